"""The stylesheet of the clinicians' page (:data:`meddl.serve._page.PAGE_HTML`), inlined in its ``<style>``.

Kept as a Python string because the package ships no data files from this folder; its hash goes into the page's
Content-Security-Policy (:data:`meddl.serve._page.PAGE_HEADERS`).
"""

from __future__ import annotations

__all__ = ["STYLE"]

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
.conformal { margin: 4px 0 8px; }
.conformal .muted { color: var(--muted); font-size: 0.9rem; }
.conformal.refer { background: var(--warn-ground); border-left: 4px solid var(--warn-line); padding: 6px 10px; }
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
.text-field input[type="text"] {
  width: 100%; padding: 5px 8px; border: 1px solid #9aa5b1; border-radius: 4px; background: #fff;
  font: 0.95rem ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
}
.field.invalid input[type="text"] { border-color: var(--error-line); border-width: 2px; }
.read-as { font-size: 0.88rem; color: var(--muted); margin: 8px 0 0; overflow-wrap: anywhere; }
.read-as code { color: var(--ink); font-size: 0.92rem; }
.heatmap-figure { margin: 6px 0 0; }
.heatmap-figure img {
  display: block; width: 100%; max-width: 320px; image-rendering: pixelated; border: 1px solid var(--line);
}
.heatmap-figure.drawing img { image-rendering: auto; background: #fff; }
.heatmap-figure figcaption { font-size: 0.85rem; color: var(--muted); margin-top: 4px; }
.survival-curve { width: 100%; max-width: 420px; margin-top: 10px; }
.survival-curve .curve { fill: none; stroke: #3b6ea8; stroke-width: 2; }
.survival-curve .axes { fill: none; stroke: var(--muted); stroke-width: 1; }
.survival-curve text { font-size: 10px; fill: var(--muted); }
.meta { font-size: 0.8rem; color: var(--muted); margin: 14px 0 0; overflow-wrap: anywhere; }
@media (max-width: 900px) {
  .columns, .fields { grid-template-columns: minmax(0, 1fr); }
  .notice, main { margin-left: 12px; margin-right: 12px; }
}
"""
