"""The HTML body of the clinicians' page (:data:`meddl.serve._page.PAGE_HTML`): the elements the script fills in.

Kept as a Python string because the package ships no data files from this folder.
"""

from __future__ import annotations

__all__ = ["BODY"]

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
          <div class="conformal" id="result-set" hidden></div>
          <div class="probability" id="probability-line"><span id="probability-of"></span><strong
            id="result-probability"></strong></div>
          <div class="scale" id="scale"><span class="fill" id="scale-fill"></span><span class="mark"
            id="scale-mark"></span></div>
          <div class="scale-legend" id="scale-legend"></div>
          <ul class="classes" id="result-classes" hidden></ul>
          <svg id="survival-curve" class="survival-curve" viewBox="0 0 320 170" role="img"
            aria-label="Predicted survival curve" hidden></svg>
        </div>
        <p class="note" id="result-note" hidden></p>
        <p class="read-as" id="result-read" hidden></p>
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
          <h3 id="heatmap-title">Where the model looked</h3>
          <figure class="heatmap-figure" id="heatmap-figure">
            <img id="heatmap" alt="Heat map of the regions that drove the suggestion, over the image">
            <figcaption id="heatmap-caption">Warmer colours: regions that weighed more in this suggestion (a guide to
              the model's attention, not a lesion outline).</figcaption>
          </figure>
        </div>
        <p class="meta" id="result-meta"></p>
        <p class="meta" id="result-notice"></p>
      </div>
    </section>
  </div>
</main>
"""
