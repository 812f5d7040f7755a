"""The clinicians' page: one self-contained HTML document (inline CSS and JavaScript, no external URL).

The page reads everything from the JSON API (``/models``, ``/models/{name}``, ``/models/{name}/explain``), so
the server sends the same static bytes to everyone. Every value that comes from the API is written with
``textContent`` and never parsed as HTML. A Content-Security-Policy that allows only this script and this
stylesheet (by hash) and only same-origin requests backs that up.

Kept as Python strings because the package ships no data files from this folder.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["PAGE_HEADERS", "PAGE_HTML"]

STYLE = r"""
:root {
  --ink: #1f2933; --muted: #52606d; --line: #d3dae1; --panel: #ffffff; --ground: #f2f4f7;
  --accent: #1f4e79; --accent-soft: #e6eef6; --raise: #a8461b; --lower: #2c5f8a;
  --warn-ground: #fff6e0; --warn-line: #b7791f; --error-ground: #fdeded; --error-line: #b42318;
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html { font-size: 15px; }
body {
  margin: 0; background: var(--ground); color: var(--ink); line-height: 1.45;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
.topbar { background: var(--accent); color: #fff; padding: 10px 24px; display: flex; align-items: baseline; gap: 12px; }
.topbar .brand { font-weight: 700; font-size: 1.15rem; letter-spacing: 0.02em; }
.topbar .tagline { opacity: 0.85; }
.notice {
  max-width: 1240px; margin: 16px auto 0; padding: 10px 16px; background: var(--warn-ground);
  border: 1px solid var(--warn-line); border-left-width: 6px; border-radius: 4px;
}
.notice strong { display: block; font-size: 1.05rem; }
main { max-width: 1240px; margin: 0 auto; padding: 16px 0 32px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 16px 20px; }
.model-panel { margin-bottom: 16px; display: grid; grid-template-columns: minmax(0, 1fr) auto; gap: 4px 24px; }
.model-panel .choice { display: flex; align-items: center; gap: 10px; font-size: 1.1rem; }
.model-panel .choice label { font-weight: 600; color: var(--muted); }
#model-name { font-weight: 700; }
#model-select { font: inherit; font-weight: 700; padding: 3px 6px; border: 1px solid #9aa5b1; border-radius: 4px; }
.model-panel p { margin: 2px 0; color: var(--muted); grid-column: 1; }
.model-panel nav { grid-column: 2; grid-row: 1 / span 3; align-self: center; display: flex; gap: 16px; }
a { color: var(--accent); }
.columns { display: grid; grid-template-columns: minmax(0, 7fr) minmax(0, 5fr); gap: 16px; align-items: start; }
h2 { font-size: 1.1rem; margin: 0 0 12px; }
h3 { font-size: 0.95rem; margin: 18px 0 6px; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); }
.fields { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px 20px; }
.field > label { display: flex; align-items: baseline; gap: 6px; font-weight: 600; margin-bottom: 3px; }
.field .unit { font-weight: 400; color: var(--muted); font-size: 0.9rem; }
.field .control { display: flex; align-items: center; gap: 12px; }
.field input[type="number"], .field select {
  width: 12rem; padding: 5px 8px; font: inherit; border: 1px solid #9aa5b1; border-radius: 4px; background: #fff;
}
.field input:disabled, .field select:disabled { background: #eef1f4; color: #9aa5b1; }
.field label.missing {
  font-weight: 400; color: var(--muted); font-size: 0.9rem; display: flex; align-items: center; gap: 4px;
}
.field .hint { margin: 2px 0 0; font-size: 0.85rem; color: var(--muted); }
.field.invalid input[type="number"], .field.invalid select { border-color: var(--error-line); border-width: 2px; }
.field-error { margin: 2px 0 0; font-size: 0.88rem; color: var(--error-line); font-weight: 600; }
.actions { margin-top: 18px; display: flex; gap: 10px; }
button { font: inherit; padding: 7px 18px; border-radius: 4px; border: 1px solid var(--accent); cursor: pointer; }
button[type="submit"] { background: var(--accent); color: #fff; font-weight: 600; }
button[type="submit"]:disabled { opacity: 0.6; cursor: progress; }
button[type="reset"] { background: #fff; color: var(--accent); }
.error-box {
  background: var(--error-ground); border: 1px solid var(--error-line); border-left-width: 6px; border-radius: 4px;
  padding: 8px 12px; margin-bottom: 14px;
}
.error-box p { margin: 0; font-weight: 600; }
.error-box ul { margin: 4px 0 0; padding-left: 20px; }
.empty { color: var(--muted); }
.result.is-stale .result-body { opacity: 0.45; }
.stale { background: var(--warn-ground); border: 1px solid var(--warn-line); padding: 6px 10px; border-radius: 4px; }
.suggestion { border-bottom: 1px solid var(--line); padding-bottom: 12px; }
.suggestion .caption { color: var(--muted); font-size: 0.9rem; }
.suggestion .label { font-size: 2rem; font-weight: 700; line-height: 1.2; }
.suggestion .probability { font-size: 1.1rem; margin-top: 4px; }
.suggestion .probability strong { font-size: 1.3rem; }
.scale {
  position: relative; height: 12px; background: var(--accent-soft); border: 1px solid var(--line);
  border-radius: 3px; margin: 10px 0 4px;
}
.scale .fill { position: absolute; left: 0; top: 0; bottom: 0; background: var(--accent); border-radius: 2px 0 0 2px; }
.scale .mark { position: absolute; top: -4px; bottom: -4px; width: 2px; background: var(--ink); }
.scale-legend { font-size: 0.82rem; color: var(--muted); }
.classes { margin: 8px 0 0; padding: 0; list-style: none; }
.classes li { display: flex; justify-content: space-between; max-width: 18rem; }
dl.operating { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0; }
dl.operating dt { color: var(--muted); }
dl.operating dd { margin: 0; font-variant-numeric: tabular-nums; }
.meaning { font-size: 0.9rem; color: var(--muted); margin: 6px 0 0; }
.note { background: var(--warn-ground); border-left: 4px solid var(--warn-line); padding: 6px 10px; margin: 12px 0 0; }
.factors { list-style: none; margin: 0; padding: 0; }
.factors li {
  display: grid; grid-template-columns: minmax(0, 11rem) minmax(0, 1fr) 4.5rem; gap: 10px;
  align-items: center; padding: 4px 0; border-bottom: 1px solid #edf0f3;
}
.factor-name { font-weight: 600; overflow-wrap: anywhere; }
.factor-value { font-weight: 400; color: var(--muted); }
.factor-bar { height: 10px; background: #f0f2f5; border-radius: 2px; position: relative; }
.factor-bar .fill { position: absolute; left: 0; top: 0; bottom: 0; border-radius: 2px; }
.raises .factor-bar .fill { background: var(--raise); }
.lowers .factor-bar .fill { background: var(--lower); }
.factor-effect { font-size: 0.9rem; font-weight: 600; }
.raises .factor-effect { color: var(--raise); }
.lowers .factor-effect { color: var(--lower); }
.caption-small { font-size: 0.85rem; color: var(--muted); margin: 0 0 6px; }
.file-field input[type="file"] { font: inherit; max-width: 100%; }
.heatmap-figure { margin: 6px 0 0; }
.heatmap-figure img {
  display: block; width: 100%; max-width: 320px; image-rendering: pixelated; border: 1px solid var(--line);
}
.heatmap-figure figcaption { font-size: 0.85rem; color: var(--muted); margin-top: 4px; }
.meta { font-size: 0.8rem; color: var(--muted); margin: 14px 0 0; overflow-wrap: anywhere; }
@media (max-width: 900px) {
  .columns, .fields { grid-template-columns: minmax(0, 1fr); }
  .notice, main { margin-left: 12px; margin-right: 12px; }
}
"""

SCRIPT = r"""
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { models: [], detail: null, fields: [], ticket: 0 };

  // Builds an element; text goes through textContent so nothing from the API is ever parsed as HTML.
  function make(tag, attributes, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (key === "className") node.className = value;
      else node.setAttribute(key, value);
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  const isNumber = (value) => typeof value === "number" && isFinite(value);
  const number = (value) => (isNumber(value) ? String(Number(value.toPrecision(4))).replace("-", "\u2212") : "");
  const percent = (p) => (100 * p).toFixed(1) + "%";
  const quoted = (text) => "\u2018" + text + "\u2019";
  const modelPath = (name) => "/models/" + encodeURIComponent(name);

  function withCi(metric) {
    if (!metric || !isNumber(metric.value)) return "not reported";
    const ci = metric.ci;
    const text = metric.value.toFixed(2);
    if (Array.isArray(ci) && isNumber(ci[0]) && isNumber(ci[1])) {
      return text + " (" + ci[0].toFixed(2) + "\u2013" + ci[1].toFixed(2) + ")";
    }
    return text;
  }

  async function api(path, options) {
    let response;
    try {
      response = await fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store" }, options || {}));
    } catch (error) {
      return { ok: false, status: 0, body: null };
    }
    let body = null;
    try {
      const type = response.headers.get("content-type") || "";
      body = type.includes("application/json") ? await response.json() : await response.text();
    } catch (error) {
      body = null;
    }
    return { ok: response.ok, status: response.status, body: body };
  }

  function problem(result) {
    if (result.status === 0) return "The server could not be reached; check the connection and try again.";
    if (result.status === 401) {
      return "Access token missing or wrong: open this page with the link (…/?token=…) your administrator gave you.";
    }
    const body = result.body;
    if (body && typeof body === "object") {
      if (typeof body.message === "string") return body.message;
      if (typeof body.detail === "string") return body.detail;
    }
    return "The server answered with status " + result.status + ".";
  }

  function showPageError(message) {
    const box = $("page-error");
    box.textContent = message;
    box.hidden = !message;
  }

  // ---- model choice -------------------------------------------------------------------------------------

  async function start() {
    const result = await api("/models");
    if (!result.ok || !Array.isArray(result.body)) {
      showPageError(problem(result));
      return;
    }
    state.models = result.body;
    if (!state.models.length) {
      showPageError("This server serves no model.");
      return;
    }
    const select = $("model-select");
    if (state.models.length > 1) {
      for (const model of state.models) select.appendChild(make("option", { value: model.name }, model.name));
      select.hidden = false;
      select.addEventListener("change", () => chooseModel(select.value));
    } else {
      $("model-name").textContent = state.models[0].name;
    }
    await chooseModel(state.models[0].name);
  }

  async function chooseModel(name) {
    const ticket = ++state.ticket;  // a slower answer for a model chosen earlier must not win
    clearErrors();
    showResult(false);
    const result = await api(modelPath(name));
    if (ticket !== state.ticket) return;
    if (!result.ok || !result.body || typeof result.body !== "object") {
      showPageError(problem(result));
      return;
    }
    showPageError("");
    const detail = result.body;
    state.detail = detail;
    state.fields = [];
    renderModel(detail);
    const box = $("fields");
    box.replaceChildren();
    const builder = FORM_BUILDERS[detail.kind];
    const image = detail.kind === "image";
    $("form-title").textContent = image ? "Image" : "Patient values";
    $("result-empty").textContent = image
      ? "Choose the patient's image file and press \u201cGet suggestion\u201d."
      : "Fill in the patient's values and press \u201cGet suggestion\u201d.";
    box.className = image ? "" : "fields";
    $("case-form").hidden = !builder;
    $("unsupported").hidden = Boolean(builder);
    if (!builder) {
      $("unsupported").textContent =
        "Models of kind " + quoted(String(detail.kind)) + " cannot be used from this page yet; use the API.";
      return;
    }
    builder(detail, box);
  }

  const TASK_WORDS = { binary: "Yes/no suggestion", multiclass: "Class suggestion", regression: "Predicted value" };
  const HEADLINE_METRICS = [["auroc", "AUROC"], ["auroc_macro", "AUROC (macro)"], ["rmse", "RMSE"], ["mae", "MAE"]];

  function renderModel(detail) {
    const facts = [(TASK_WORDS[detail.task] || detail.task) + " for " + quoted(String(detail.target || "?"))];
    if (Array.isArray(detail.classes) && detail.classes.length) facts.push("classes: " + detail.classes.join(" / "));
    for (const [key, words] of HEADLINE_METRICS) {
      if (detail.metrics && detail.metrics[key]) {
        facts.push("test " + words + " " + withCi(detail.metrics[key]));
        break;
      }
    }
    if (detail.created) facts.push("trained " + String(detail.created).slice(0, 10));
    $("model-facts").textContent = facts.join(" \u00b7 ");
    $("model-description").textContent = detail.description || "";
    $("model-description").hidden = !detail.description;
    const card = $("link-card");
    card.hidden = !detail.model_card;
    card.setAttribute("href", modelPath(detail.name) + "/card");
    $("link-report").setAttribute("href", modelPath(detail.name) + "/report");
  }

  // ---- the form: one builder and one reader per model kind --------------------------------------------------
  // A reader returns {request: {headers, body}, problems}: JSON records for a table, one uploaded file
  // (multipart field "file") for an image model. A kind without a builder gets the "use the API" line.

  function buildTabularForm(detail, box) {
    state.fields = (detail.input_schema || []).map((entry) => addField(entry, box));
  }

  function addField(entry, box) {
    const column = String(entry.name);
    const unit = entry.unit ? String(entry.unit) : "";
    const wrap = make("div", { className: "field" });
    const label = make("label", { for: "field-" + column });
    label.appendChild(make("span", { className: "name" }, column));
    if (unit) label.appendChild(make("span", { className: "unit" }, unit));
    wrap.appendChild(label);
    const row = make("div", { className: "control" });
    let control;
    let hint = "";
    if (entry.type === "numeric") {
      control = make("input", {
        type: "number", step: "any", id: "field-" + column, name: column, inputmode: "decimal", autocomplete: "off",
      });
      const range = entry.typical_range || [];
      if (isNumber(range[0]) && isNumber(range[1])) {
        const span = number(range[0]) + " to " + number(range[1]);  // an en dash would read as a minus sign
        control.setAttribute("placeholder", span);
        hint = "training 5th\u201395th centile: " + span + (unit ? " " + unit : "");
      }
    } else {
      control = make("select", { id: "field-" + column, name: column });
      for (const level of entry.allowed || []) control.appendChild(make("option", { value: String(level) }, level));
      control.selectedIndex = -1;  // nothing chosen until the clinician chooses
    }
    row.appendChild(control);
    let missing = null;
    if (entry.nullable) {
      missing = make("input", { type: "checkbox", id: "missing-" + column, name: "missing-" + column });
      const missingLabel = make("label", { className: "missing" });
      missingLabel.appendChild(missing);
      missingLabel.appendChild(document.createTextNode("not measured"));
      missing.addEventListener("change", () => { control.disabled = missing.checked; });
      row.appendChild(missingLabel);
    }
    wrap.appendChild(row);
    if (hint) wrap.appendChild(make("p", { className: "hint" }, hint));
    const error = make("p", { className: "field-error", id: "error-" + column });
    error.hidden = true;
    wrap.appendChild(error);
    box.appendChild(wrap);
    return { entry: entry, column: column, control: control, missing: missing, wrap: wrap, error: error };
  }

  const IMAGE_ACCEPT = [".dcm", ".nii", ".nii.gz", ".png", ".jpg", ".jpeg"];

  function buildImageForm(detail, box) {
    const schema = detail.input_schema || {};
    const wrap = make("div", { className: "field file-field" });
    const label = make("label", { for: "image-file" });
    label.appendChild(make("span", { className: "name" }, "Image file"));
    wrap.appendChild(label);
    const control = make("input", { type: "file", id: "image-file", name: "file", accept: IMAGE_ACCEPT.join(",") });
    wrap.appendChild(control);
    const formats = Array.isArray(schema.formats) && schema.formats.length
      ? schema.formats.map(String).join(", ") : "DICOM, NIfTI, PNG or JPEG";
    const dims = isNumber(schema.spatial_dims) ? " \u00b7 " + String(schema.spatial_dims) + "-D images" : "";
    wrap.appendChild(make("p", { className: "hint" }, "one file per case: " + formats + dims));
    box.appendChild(wrap);
  }

  function readImageFile() {
    const files = $("image-file").files;
    if (!files || !files.length) {
      return { request: null, problems: [{ column: null, message: "Choose an image file first." }] };
    }
    const data = new FormData();
    data.append("file", files[0], files[0].name);
    // No content-type header: the browser writes the multipart boundary itself.
    return { request: { headers: { accept: "application/json" }, body: data }, problems: [] };
  }

  function readTabularRecord() {
    const record = {};
    const problems = [];
    for (const field of state.fields) {
      if (field.missing && field.missing.checked) {
        record[field.column] = null;
      } else if (field.entry.type === "numeric") {
        if (field.control.validity.badInput) problems.push({ column: field.column, message: "not a number" });
        // An empty box is left out of the request on purpose: the server answers with the field's name.
        else if (field.control.value.trim() !== "") record[field.column] = Number(field.control.value);
      } else if (field.control.selectedIndex >= 0) {
        record[field.column] = field.control.value;
      }
    }
    return {
      request: {
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ records: [record] }),
      },
      problems: problems,
    };
  }

  const FORM_BUILDERS = { tabular: buildTabularForm, image: buildImageForm };
  const RECORD_READERS = { tabular: readTabularRecord, image: readImageFile };

  // ---- errors -----------------------------------------------------------------------------------------------

  function clearErrors() {
    const box = $("form-error");
    box.replaceChildren();
    box.hidden = true;
    for (const field of state.fields) {
      field.wrap.classList.remove("invalid");
      field.error.hidden = true;
      field.error.textContent = "";
    }
  }

  // items: [{column, message, type}] (column may be null when the error is about the whole request)
  function showFormError(message, items) {
    const box = $("form-error");
    box.replaceChildren(make("p", {}, message));
    if (items.length) {
      const list = make("ul");
      for (const item of items) {
        list.appendChild(make("li", {}, item.column ? item.column + ": " + item.message : item.message));
        const field = state.fields.find((f) => f.column === item.column);
        if (!field) continue;
        let advice = "";
        if (item.type === "missing") {
          advice = field.missing ? " \u2014 enter a value or tick \u201cnot measured\u201d" : " \u2014 enter a value";
        }
        field.wrap.classList.add("invalid");
        field.error.textContent = item.message + advice;
        field.error.hidden = false;
      }
      box.appendChild(list);
    }
    box.hidden = false;
  }

  function fieldErrors(body) {
    if (!body || !Array.isArray(body.detail)) return [];
    return body.detail.map((item) => {
      const path = String(item.field || "");
      const column = path.replace(/^records\[\d+\]\.?/, "") || null;
      return { column: column === "records" ? null : column, message: String(item.message || ""), type: item.type };
    });
  }

  // ---- submit and result ------------------------------------------------------------------------------------

  async function submit(event) {
    event.preventDefault();
    const detail = state.detail;
    const reader = detail && RECORD_READERS[detail.kind];
    if (!reader) return;
    clearErrors();
    const read = reader();
    if (read.problems.length) {
      showResult(false);
      showFormError(detail.kind === "image" ? "No image to score." : "Please correct the marked values.",
        read.problems);
      return;
    }
    const button = $("submit");
    button.disabled = true;
    button.textContent = "Computing\u2026";
    const result = await api(modelPath(detail.name) + "/explain", {
      method: "POST", headers: read.request.headers, body: read.request.body,
    });
    button.disabled = false;
    button.textContent = "Get suggestion";
    if (detail !== state.detail) return;  // the model was changed while this one was computing
    if (!result.ok || !result.body || !Array.isArray(result.body.predictions)) {
      showResult(false);
      const items = result.status === 422 ? fieldErrors(result.body) : [];
      showFormError(items.length ? "The values could not be scored:" : problem(result), items);
      return;
    }
    renderResult(detail, result.body);
  }

  function showResult(visible) {
    $("result-body").hidden = !visible;
    $("result-empty").hidden = visible;
    $("stale").hidden = true;
    $("result").classList.remove("is-stale");
  }

  function renderResult(detail, body) {
    const prediction = body.predictions[0] || {};
    const classes = Array.isArray(detail.classes) ? detail.classes : [];
    const regression = detail.task === "regression";
    const positive = detail.task === "binary" && classes.length === 2 ? String(classes[1]) : null;

    $("result-caption").textContent = regression ? "Predicted " + String(detail.target || "value") : "Suggestion";
    if (regression) {
      $("result-label").textContent = isNumber(prediction.prediction) ? number(prediction.prediction) : "not scored";
    } else {
      $("result-label").textContent = prediction.label !== null && prediction.label !== undefined
        ? String(prediction.label) : "not scored";
    }

    // Probability: of the positive class (binary) or of the suggested class (multiclass).
    let probability = null;
    let of = null;
    if (positive !== null && isNumber(prediction.probability)) {
      probability = prediction.probability;
      of = positive;
    } else if (prediction.probabilities && prediction.label in prediction.probabilities) {
      probability = prediction.probabilities[prediction.label];
      of = String(prediction.label);
    }
    $("probability-line").hidden = probability === null;
    $("scale").hidden = probability === null;
    if (probability !== null) {
      $("probability-of").textContent = "Probability of " + quoted(of) + ": ";
      $("result-probability").textContent = percent(probability);
      $("scale-fill").style.width = (100 * probability).toFixed(1) + "%";
    }
    const threshold = isNumber(prediction.threshold) ? prediction.threshold : null;
    $("scale-mark").hidden = threshold === null;
    $("scale-legend").hidden = threshold === null;
    if (threshold !== null) {
      $("scale-mark").style.left = (100 * threshold).toFixed(1) + "%";
      $("scale-legend").textContent = "bar: probability \u00b7 line: threshold " + percent(threshold);
    }

    const classList = $("result-classes");
    classList.replaceChildren();
    if (detail.task === "multiclass" && prediction.probabilities) {
      for (const [name, p] of Object.entries(prediction.probabilities)) {
        const item = make("li");
        item.appendChild(make("span", {}, name));
        item.appendChild(make("span", {}, isNumber(p) ? percent(p) : ""));
        classList.appendChild(item);
      }
    }
    classList.hidden = !classList.children.length;

    const point = detail.operating_point;
    $("operating-point").hidden = !point || threshold === null;
    if (point && threshold !== null) {
      $("result-threshold").textContent =
        percent(threshold) + " (" + threshold.toFixed(3) + (point.rule ? ", chosen by " + point.rule : "") + ")";
      $("result-sensitivity").textContent = withCi(point.sensitivity);
      $("result-specificity").textContent = withCi(point.specificity);
      $("threshold-meaning").textContent = point.meaning || "";
    }

    $("result-note").textContent = prediction.note || "";
    $("result-note").hidden = !prediction.note;

    renderFactors(prediction.contributions || [], regression ? null : (positive !== null ? positive : of));
    renderHeatmap(prediction.heatmap_png);

    $("result-meta").textContent =
      "Request " + String(body.request_id) + " \u00b7 model " + String(body.model) +
      " \u00b7 bundle " + String(body.bundle_hash).slice(0, 12);
    $("result-notice").textContent = body.notice || "";
    showResult(true);
  }

  // Only a plain base64 string becomes a data: URL, so nothing else from the answer can reach the src.
  function renderHeatmap(png) {
    const image = $("heatmap");
    const valid = typeof png === "string" && png.length > 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(png);
    $("heatmap-section").hidden = !valid;
    if (valid) image.setAttribute("src", "data:image/png;base64," + png);
    else image.removeAttribute("src");
  }

  function renderFactors(contributions, towards) {
    const list = $("factors");
    list.replaceChildren();
    $("factors-section").hidden = !contributions.length;
    if (!contributions.length) return;
    $("factors-caption").textContent =
      (towards !== null ? "Effect on the probability of " + quoted(towards) : "Effect on the predicted value") +
      ", strongest first (integrated gradients).";
    const largest = Math.max(...contributions.map((c) => Math.abs(Number(c.contribution) || 0))) || 1;
    for (const factor of contributions) {
      const size = Number(factor.contribution) || 0;
      const effect = size > 0 ? "raises" : size < 0 ? "lowers" : "no effect";
      const item = make("li", { className: size > 0 ? "raises" : "lowers" });
      item.setAttribute("title", "contribution " + size.toFixed(3) + " (logit units)");
      const name = make("span", { className: "factor-name" }, String(factor.feature));
      const value = factor.value === null || factor.value === undefined
        ? "not measured"
        : (isNumber(factor.value) ? number(factor.value) : String(factor.value));
      name.appendChild(make("span", { className: "factor-value" }, " = " + value));
      const bar = make("span", { className: "factor-bar" });
      const fill = make("span", { className: "fill" });
      fill.style.width = (100 * Math.abs(size) / largest).toFixed(1) + "%";
      bar.appendChild(fill);
      item.appendChild(name);
      item.appendChild(bar);
      item.appendChild(make("span", { className: "factor-effect" }, effect));
      list.appendChild(item);
    }
  }

  function markStale() {
    if (!$("result-body").hidden) {
      $("stale").hidden = false;
      $("result").classList.add("is-stale");
    }
  }

  function reset() {
    setTimeout(() => {  // after the browser's own reset of the values
      for (const field of state.fields) {
        field.control.disabled = false;
        if (field.control.tagName === "SELECT") field.control.selectedIndex = -1;
      }
      clearErrors();
      showResult(false);
    }, 0);
  }

  const form = $("case-form");
  form.addEventListener("submit", submit);
  form.addEventListener("input", markStale);
  form.addEventListener("change", markStale);
  form.addEventListener("reset", reset);
  start();
})();
"""

BODY = """
<header class="topbar"><span class="brand">MedDL</span><span class="tagline">clinical decision support</span></header>
<div class="notice" id="notice" role="note">
  <strong>Decision support, not a diagnosis</strong>
  Each result is a statistical estimate from a model trained on past patients: weigh it with the full clinical
  picture and your own judgement, and check the model card for whom it was validated on.
</div>
<main>
  <div id="page-error" class="error-box" role="alert" hidden></div>
  <section class="panel model-panel" aria-label="Model">
    <div class="choice">
      <label for="model-select">Model</label>
      <select id="model-select" hidden></select>
      <span id="model-name"></span>
    </div>
    <p id="model-facts"></p>
    <p id="model-description" hidden></p>
    <nav>
      <a id="link-card" href="#" target="_blank" rel="noopener" hidden>Model card</a>
      <a id="link-report" href="#" target="_blank" rel="noopener">Training report</a>
    </nav>
  </section>
  <div class="columns">
    <section class="panel" aria-labelledby="form-title">
      <h2 id="form-title">Patient values</h2>
      <div id="form-error" class="error-box" role="alert" hidden></div>
      <p id="unsupported" class="empty" hidden></p>
      <form id="case-form" method="post" novalidate autocomplete="off">
        <div id="fields" class="fields"></div>
        <div class="actions">
          <button type="submit" id="submit">Get suggestion</button>
          <button type="reset" id="clear">Clear</button>
        </div>
      </form>
    </section>
    <section class="panel result" id="result" aria-live="polite" aria-labelledby="result-title">
      <h2 id="result-title">Result</h2>
      <p id="result-empty" class="empty">Fill in the patient's values and press \u201cGet suggestion\u201d.</p>
      <p id="stale" class="stale" hidden>The values changed since this result:
        press \u201cGet suggestion\u201d again.</p>
      <div id="result-body" class="result-body" hidden>
        <div class="suggestion">
          <div class="caption" id="result-caption">Suggestion</div>
          <div class="label" id="result-label"></div>
          <div class="probability" id="probability-line"><span id="probability-of"></span><strong
            id="result-probability"></strong></div>
          <div class="scale" id="scale"><span class="fill" id="scale-fill"></span><span class="mark"
            id="scale-mark"></span></div>
          <div class="scale-legend" id="scale-legend"></div>
          <ul class="classes" id="result-classes" hidden></ul>
        </div>
        <p class="note" id="result-note" hidden></p>
        <div id="operating-point">
          <h3>Threshold</h3>
          <dl class="operating">
            <dt>Threshold</dt><dd id="result-threshold"></dd>
            <dt>Sensitivity</dt><dd id="result-sensitivity"></dd>
            <dt>Specificity</dt><dd id="result-specificity"></dd>
          </dl>
          <p class="meaning" id="threshold-meaning"></p>
        </div>
        <div id="factors-section">
          <h3>Main factors for this patient</h3>
          <p class="caption-small" id="factors-caption"></p>
          <ol class="factors" id="factors"></ol>
        </div>
        <div id="heatmap-section" hidden>
          <h3>Where the model looked</h3>
          <figure class="heatmap-figure">
            <img id="heatmap" alt="Heat map of the regions that drove the suggestion, over the image">
            <figcaption>Warmer colours: regions that weighed more in this suggestion (a guide to the model's
              attention, not a lesion outline).</figcaption>
          </figure>
        </div>
        <p class="meta" id="result-meta"></p>
        <p class="meta" id="result-notice"></p>
      </div>
    </section>
  </div>
</main>
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


PAGE_HTML = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>MedDL — clinical decision support</title>
<style>{STYLE}</style>
</head>
<body>
{BODY}
<script>{SCRIPT}</script>
</body>
</html>
"""

# Only this script and this stylesheet run, requests go to this server only, and the form cannot be sent
# anywhere by the browser itself (so patient values never land in a URL if the script failed to load).
PAGE_HEADERS = {
    "content-security-policy": "; ".join(
        [
            "default-src 'none'",
            f"script-src {_sha256(SCRIPT)}",
            f"style-src {_sha256(STYLE)}",
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
