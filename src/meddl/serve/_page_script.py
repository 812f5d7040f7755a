"""The script of the clinicians' page (:data:`meddl.serve._page.PAGE_HTML`), inlined in its ``<script>``.

It reads everything from the JSON API and writes every value from it with ``textContent``, never as HTML. Kept
as a Python string because the package ships no data files from this folder; its hash goes into the page's
Content-Security-Policy (:data:`meddl.serve._page.PAGE_HEADERS`).
"""

from __future__ import annotations

__all__ = ["SCRIPT"]

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
    const builder = FORM_BUILDERS[detail.request_style];
    const words = formWords(detail);
    $("form-title").textContent = words.title;
    $("result-empty").textContent = words.empty;
    box.className = detail.request_style === "records" ? "fields" : "";
    const built = Boolean(builder) && builder(detail, box) !== false;  // false: the detail lacks what it needs
    $("case-form").hidden = !built;
    $("unsupported").hidden = built;
    if (!built) {
      $("unsupported").textContent =
        "Models of kind " + quoted(String(detail.kind)) + " cannot be used from this page yet; use the API.";
    }
  }

  // The form's words per request style: its title, the line shown before any result, and the headlines of the
  // form's own problems and of the server's refusal. A text case takes its words from its text field.
  function formWords(detail) {
    const text = detail.request_style === "text" ? textField(detail) : null;
    if (text) {
      return {
        title: text.noun.charAt(0).toUpperCase() + text.noun.slice(1),
        empty: "Type the " + text.noun + "'s " + text.label + " and press \u201cGet suggestion\u201d.",
        invalid: "No " + text.label + " to score.",
        refused: "The " + text.label + " could not be scored:",
      };
    }
    if (detail.request_style === "upload_image") {
      return {
        title: "Image", empty: "Choose the patient's image file and press \u201cGet suggestion\u201d.",
        invalid: "No image to score.", refused: "The values could not be scored:",
      };
    }
    return {
      title: "Patient values", empty: "Fill in the patient's values and press \u201cGet suggestion\u201d.",
      invalid: "Please correct the marked values.", refused: "The values could not be scored:",
    };
  }

  const TASK_WORDS = {
    binary: "Yes/no suggestion", multiclass: "Class suggestion", regression: "Predicted value",
    survival: "Survival prediction",
  };
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

  // ---- the form: one builder and one reader per request style ---------------------------------------------
  // A reader returns {request: {headers, body, action}, problems}: JSON records for a table, one uploaded file
  // (multipart field "file") for an image model, one case typed as text (a SMILES) as the JSON body of the model's
  // own explain route (``action``; "explain" when absent). A kind without a builder gets the "use the API" line.

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

  // The text box of a "text" request style, from the detail: the body's list of cases (items), the case's field,
  // its label and an example, and the JSON explain route (json_routes.explain); null when any is missing.
  function textField(detail) {
    const spec = detail && detail.input_schema && detail.input_schema.text_field;
    const routes = detail && detail.json_routes;
    if (!spec || typeof spec.items !== "string" || !spec.items || typeof spec.field !== "string" || !spec.field ||
        !routes || typeof routes.explain !== "string" || !routes.explain) {
      return null;
    }
    return {
      items: spec.items,
      field: spec.field,
      label: typeof spec.label === "string" && spec.label ? spec.label : spec.field,
      example: typeof spec.example === "string" ? spec.example : "",
      noun: spec.items.replace(/s$/, "") || "case",  // "molecules": one molecule
      route: routes.explain,
    };
  }

  function buildTextForm(detail, box) {
    const spec = textField(detail);
    if (!spec) return false;
    const column = spec.field;
    const wrap = make("div", { className: "field text-field" });
    const label = make("label", { for: "field-" + column });
    label.appendChild(make("span", { className: "name" }, spec.label));
    wrap.appendChild(label);
    const row = make("div", { className: "control" });
    const control = make("input", {
      type: "text", id: "field-" + column, name: column, autocomplete: "off", autocapitalize: "off",
      spellcheck: "false", "aria-describedby": "hint-" + column + " error-" + column,
    });
    if (spec.example) control.setAttribute("placeholder", spec.example);
    row.appendChild(control);
    wrap.appendChild(row);
    wrap.appendChild(make("p", { className: "hint", id: "hint-" + column },
      "one " + spec.noun + ", written as " + spec.label + (spec.example ? " (e.g. " + spec.example + ")" : "")));
    const error = make("p", { className: "field-error", id: "error-" + column });
    error.hidden = true;
    wrap.appendChild(error);
    box.appendChild(wrap);
    state.fields = [
      { entry: spec, column: column, name: spec.label, control: control, missing: null, wrap: wrap, error: error },
    ];
    return true;
  }

  function readTextCase() {
    const spec = textField(state.detail);
    const field = state.fields[0];
    const value = field.control.value.trim();
    if (!value) {
      return { request: null, problems: [{ column: field.column, message: "Enter a " + spec.label + " first." }] };
    }
    const item = { id: "case" };
    item[spec.field] = value;
    const body = {};
    body[spec.items] = [item];
    return {
      request: {
        action: spec.route,
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(body),
      },
      problems: [],
    };
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

  // keyed by how the model takes a request (JSON records, one uploaded image, one case as text), never by the
  // data kind's name
  const FORM_BUILDERS = { records: buildTabularForm, upload_image: buildImageForm, text: buildTextForm };
  const RECORD_READERS = { records: readTabularRecord, upload_image: readImageFile, text: readTextCase };

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
        const field = state.fields.find((f) => f.column === item.column);
        const shown = field && field.name ? field.name : item.column;  // a text field goes by its label
        list.appendChild(make("li", {}, shown ? shown + ": " + item.message : item.message));
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

  // The server's 422 items with their field as the form's column: "records[0].age" is "age", and a text case's
  // "molecules[0].smiles" is its text field "smiles".
  function fieldErrors(body) {
    if (!body || !Array.isArray(body.detail)) return [];
    const text = state.detail && state.detail.request_style === "text" ? textField(state.detail) : null;
    const items = text ? text.items : "records";
    const prefix = new RegExp("^" + items.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "\\[\\d+\\]\\.?");
    return body.detail.map((item) => {
      const path = String(item.field || "");
      const column = path.replace(prefix, "") || null;
      return { column: column === items ? null : column, message: String(item.message || ""), type: item.type };
    });
  }

  // ---- submit and result ------------------------------------------------------------------------------------

  async function submit(event) {
    event.preventDefault();
    const detail = state.detail;
    const reader = detail && RECORD_READERS[detail.request_style];
    if (!reader) return;
    clearErrors();
    const read = reader();
    const words = formWords(detail);
    if (read.problems.length) {
      showResult(false);
      showFormError(words.invalid, read.problems);
      return;
    }
    const button = $("submit");
    button.disabled = true;
    button.textContent = "Computing\u2026";
    const action = read.request.action || "explain";
    const result = await api(modelPath(detail.name) + "/" + encodeURIComponent(action), {
      method: "POST", headers: read.request.headers, body: read.request.body,
    });
    button.disabled = false;
    button.textContent = "Get suggestion";
    if (detail !== state.detail) return;  // the model was changed while this one was computing
    if (!result.ok || !result.body || !Array.isArray(result.body.predictions)) {
      showResult(false);
      const items = result.status === 422 ? fieldErrors(result.body) : [];
      showFormError(items.length ? words.refused : problem(result), items);
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
    const survival = detail.task === "survival";
    const positive = detail.task === "binary" && classes.length === 2 ? String(classes[1]) : null;

    const segmentation = detail.task === "segmentation";
    $("result-caption").textContent = regression ? "Predicted " + String(detail.target || "value")
      : survival ? "Median survival time" : segmentation ? "Measured from the predicted mask" : "Suggestion";
    if (segmentation) {
      const parts = Object.entries(prediction.segmentation || {}).map(([label, m]) =>
        label + ": " + number(m.size) + " " + m.unit + " (" + m.lesions + (m.lesions === 1 ? " lesion)" : " lesions)"));
      $("result-label").textContent = parts.length ? parts.join("; ") : "not scored";
    } else if (survival) {
      $("result-label").textContent = isNumber(prediction.median_survival) ? number(prediction.median_survival)
        : (isNumber(prediction.risk) ? "not reached within follow-up" : "not scored");
    } else if (regression) {
      $("result-label").textContent = isNumber(prediction.prediction) ? number(prediction.prediction) : "not scored";
    } else {
      $("result-label").textContent = prediction.label !== null && prediction.label !== undefined
        ? String(prediction.label) : "not scored";
    }

    renderSet(detail, prediction);

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
    if (survival && prediction.survival) {
      for (const [horizon, p] of Object.entries(prediction.survival)) {
        const item = make("li");
        item.appendChild(make("span", {}, "Event-free at " + horizon));
        item.appendChild(make("span", {}, isNumber(p) ? percent(p) : ""));
        classList.appendChild(item);
      }
    }
    renderSurvivalCurve(survival ? prediction.survival_curve : null);
    if (detail.task === "multiclass" && prediction.probabilities) {
      for (const [name, p] of Object.entries(prediction.probabilities)) {
        const item = make("li");
        item.appendChild(make("span", {}, name));
        item.appendChild(make("span", {}, isNumber(p) ? percent(p) : ""));
        classList.appendChild(item);
      }
    }
    const maskFile = prediction.mask_file;
    const maskValid = maskFile && typeof maskFile.base64 === "string" && /^[A-Za-z0-9+/]+={0,2}$/.test(maskFile.base64);
    if (segmentation && maskValid) {
      const item = make("li");
      const link = make("a", {}, "Download the mask (" + String(maskFile.name) + ")");
      link.setAttribute("href", "data:application/octet-stream;base64," + maskFile.base64);
      link.setAttribute("download", String(maskFile.name));
      item.appendChild(link);
      classList.appendChild(item);
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
    renderReadAs(detail, prediction);

    renderFactors(prediction.contributions || [],
      survival ? RISK : regression ? null : (positive !== null ? positive : of));
    renderPicture(prediction);

    $("result-meta").textContent =
      "Request " + String(body.request_id) + " \u00b7 model " + String(body.model) +
      " \u00b7 bundle " + String(body.bundle_hash).slice(0, 12);
    $("result-notice").textContent = body.notice || "";
    showResult(true);
  }

  // The conformal set or interval: "could be A or B"; a set of other than one label, or an interval wider than
  // serve.max_interval, replaces the single answer with "uncertain — refer for review".
  function renderSet(detail, prediction) {
    const box = $("result-set");
    const conformal = detail.conformal;
    box.replaceChildren();
    box.className = "conformal";
    if ((prediction.uncertain === null || prediction.uncertain === undefined) &&
        !isNumber(prediction.survival_lower_bound)) {
      box.hidden = true;
      return;
    }
    const level = conformal ? (100 * conformal.coverage).toFixed(0) + " %" : "";
    let text = "";
    if (Array.isArray(prediction.prediction_set)) {
      const labels = prediction.prediction_set.map(String);
      text = labels.length === 0 ? "No label fits at " + level + " confidence."
        : labels.length === 1 ? "The " + level + " prediction set holds only " + quoted(labels[0]) + "."
        : "Could be " + labels.slice(0, -1).map(quoted).join(", ") + " or " + quoted(labels[labels.length - 1]) +
          " (" + level + " prediction set).";
    } else if (prediction.interval) {
      text = level + " interval: " + number(prediction.interval.lower) + " to " + number(prediction.interval.upper);
      if (conformal && isNumber(conformal.max_interval)) {
        text += " (refer when wider than " + number(conformal.max_interval) + ")";
      }
      text += ".";
    } else if (isNumber(prediction.survival_lower_bound)) {
      text = "With " + level + " confidence the event comes no earlier than " +
        number(prediction.survival_lower_bound) + " (a conformal lower bound).";
    } else if (prediction.label_sets) {
      const open = Object.entries(prediction.label_sets).filter(([, kept]) => kept.length !== 1).map(([n]) => n);
      text = open.length ? "Cannot be ruled in or out at " + level + ": " + open.join(", ") + "."
        : "Every label is settled at " + level + ".";
    }
    const rule = detail.referral;
    if (prediction.refer && rule) {
      text += (text ? " " : "") + "The model is less sure of this case than the referral cut-off (set so the cases " +
        "it keeps reach " + String(rule.metric) + " ≥ " + String(rule.target) + ").";
    }
    if (prediction.uncertain) {
      $("result-label").textContent = "Uncertain — refer for review";
      box.className = "conformal refer";
    }
    box.appendChild(make("span", {}, text));
    if (conformal && conformal.test_coverage) {
      box.appendChild(make("span", { className: "muted" }, " Held the truth for " + conformal.test_coverage +
        " of test cases."));
    }
    box.hidden = !text;
  }

  // The predicted survival curve as an SVG step line: time on x (the data's unit), probability on y.
  function renderSurvivalCurve(curve) {
    const svg = $("survival-curve");
    svg.replaceChildren();
    const ok = curve && Array.isArray(curve.time) && Array.isArray(curve.survival) && curve.time.length > 1;
    svg.toggleAttribute("hidden", !ok);  // an SVG element has no .hidden property
    if (!ok) return;
    const ns = "http://www.w3.org/2000/svg";
    const left = 40, right = 310, top = 10, bottom = 140;
    const tMax = Math.max(...curve.time) || 1;
    const x = (t) => left + (right - left) * t / tMax;
    const y = (p) => bottom - (bottom - top) * Math.min(Math.max(p, 0), 1);
    let path = "M" + x(curve.time[0]).toFixed(1) + "," + y(curve.survival[0]).toFixed(1);
    for (let i = 1; i < curve.time.length; i++) {
      if (!isNumber(curve.survival[i])) continue;
      path += "H" + x(curve.time[i]).toFixed(1) + "V" + y(curve.survival[i]).toFixed(1);
    }
    const line = document.createElementNS(ns, "path");
    line.setAttribute("d", path);
    line.setAttribute("class", "curve");
    const axes = document.createElementNS(ns, "path");
    axes.setAttribute("d", "M" + left + "," + top + "V" + bottom + "H" + right);
    axes.setAttribute("class", "axes");
    svg.append(axes, line);
    for (const [text, tx, ty, anchor] of [["100%", left - 4, top + 4, "end"], ["0%", left - 4, bottom, "end"],
      ["0", left, bottom + 14, "middle"], [number(tMax), right, bottom + 14, "end"],
      ["time", (left + right) / 2, bottom + 28, "middle"]]) {
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", tx);
      label.setAttribute("y", ty);
      label.setAttribute("text-anchor", anchor);
      label.textContent = text;
      svg.appendChild(label);
    }
  }

  // The explanation picture an answer carries, by the field it comes in: an image's heat map, a compound's
  // structure with its atom attributions.
  const PICTURES = [
    ["heatmap_png", {
      title: "Where the model looked", drawing: false,
      alt: "Heat map of the regions that drove the suggestion, over the image",
      caption: "Warmer colours: regions that weighed more in this suggestion (a guide to the model's attention, " +
        "not a lesion outline).",
    }],
    ["overlay_png", {
      title: "Predicted mask", drawing: false,
      alt: "The image with the predicted mask filled in colour",
      caption: "Filled: the region the model segmented (the slice with the most of it, for a volume); the sizes " +
        "above are measured on the whole mask at the image's own spacing.",
    }],
    ["molecule_png", {
      title: "Atoms that drove the suggestion", drawing: true,
      alt: "The structure with atom attributions",
      caption: "Green contours: atoms that raise the model's output; pink: atoms that lower it (integrated " +
        "gradients, on one scale per structure).",
    }],
  ];

  function renderPicture(prediction) {
    const found = PICTURES.find(([key]) => typeof prediction[key] === "string" && prediction[key]);
    const words = found ? found[1] : PICTURES[0][1];
    renderHeatmap(found ? prediction[found[0]] : null);
    $("heatmap-title").textContent = words.title;
    $("heatmap").setAttribute("alt", words.alt);
    $("heatmap-caption").textContent = words.caption;
    $("heatmap-figure").classList.toggle("drawing", words.drawing);
  }

  // Only a plain base64 string becomes a data: URL, so nothing else from the answer can reach the src.
  function renderHeatmap(png) {
    const image = $("heatmap");
    const valid = typeof png === "string" && png.length > 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(png);
    $("heatmap-section").hidden = !valid;
    if (valid) image.setAttribute("src", "data:image/png;base64," + png);
    else image.removeAttribute("src");
  }

  // A text case as the model read it (a SMILES standardised: salt removed, charges neutralised), when the answer
  // gives it back in the text field's own name.
  function renderReadAs(detail, prediction) {
    const box = $("result-read");
    box.replaceChildren();
    const text = detail.request_style === "text" ? textField(detail) : null;
    const value = text ? prediction[text.field] : null;
    box.hidden = typeof value !== "string" || !value;
    if (box.hidden) return;
    box.appendChild(document.createTextNode(text.label + " as the model read it: "));
    box.appendChild(make("code", {}, value));
  }

  const RISK = {};  // renderFactors' marker for a survival model's risk (never equal to a class name)

  function renderFactors(contributions, towards) {
    const list = $("factors");
    list.replaceChildren();
    $("factors-section").hidden = !contributions.length;
    if (!contributions.length) return;
    $("factors-caption").textContent =
      (towards === RISK ? "Effect on the risk of the event (raises: earlier event expected)"
        : towards !== null ? "Effect on the probability of " + quoted(towards) : "Effect on the predicted value") +
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
