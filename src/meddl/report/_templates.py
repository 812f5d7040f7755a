"""Jinja2 templates of the HTML report and the Markdown model card, kept as strings.

Kept in a module rather than as package data so they ship with the code whatever the packaging settings.
The HTML template is rendered with autoescaping; the Markdown one escapes through the ``md`` filter.
"""

from __future__ import annotations

__all__ = ["MODEL_CARD_MD", "REPORT_CSS", "REPORT_HTML"]

REPORT_CSS = """
:root { --ink: #1f2328; --muted: #57606a; --line: #d0d7de; --soft: #f6f8fa; --accent: #0b5394;
        --warn-bg: #fff8e6; --warn-line: #d4a72c; --notice-bg: #eef4fb; }
* { box-sizing: border-box; }
html { font-size: 15px; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.5;
       font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
header.report-header { border-bottom: 3px solid var(--accent); padding-bottom: 1rem; margin-bottom: 1rem; }
h1 { font-size: 1.7rem; margin: 0 0 0.75rem; font-weight: 600; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 0.6rem; padding-bottom: 0.25rem; border-bottom: 1px solid var(--line);
     font-weight: 600; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 0.4rem; font-weight: 600; }
p { margin: 0.4rem 0 0.8rem; }
.muted, .caption { color: var(--muted); }
.caption { font-size: 0.88rem; margin-top: 0.3rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1.2rem; margin: 0.5rem 0 1rem; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.hash { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.85rem; }
.notice { background: var(--notice-bg); border-left: 5px solid var(--accent); padding: 0.8rem 1rem;
          margin: 1rem 0; }
.notice strong { display: block; margin-bottom: 0.2rem; }
.alert { background: var(--warn-bg); border-left: 5px solid var(--warn-line); padding: 0.7rem 1rem;
         margin: 0.8rem 0; }
.alert ul { margin: 0.3rem 0 0; padding-left: 1.2rem; }
nav.toc { font-size: 0.9rem; margin: 0.5rem 0 0; display: flex; flex-wrap: wrap; row-gap: 0.2rem; }
nav.toc a { color: var(--accent); text-decoration: none; margin-right: 1rem; white-space: nowrap; }
nav.toc a:hover { text-decoration: underline; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.92rem; }
th, td { border-bottom: 1px solid var(--line); padding: 0.35rem 0.7rem; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 600; }
.scroll { max-height: 30rem; overflow: auto; border: 1px solid var(--line); margin-bottom: 1rem; }
.scroll table { margin: 0; width: 100%; }
.scroll th { position: sticky; top: 0; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 1.2rem; }
.figures figure.wide { grid-column: 1 / -1; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { font-size: 0.88rem; color: var(--muted); margin-top: 0.3rem; }
figcaption strong { color: var(--ink); }
pre { background: var(--soft); border: 1px solid var(--line); padding: 0.8rem 1rem; overflow: auto;
      font-size: 0.85rem; line-height: 1.4; }
footer { margin-top: 3rem; font-size: 0.85rem; color: var(--muted); border-top: 1px solid var(--line);
         padding-top: 0.8rem; }
@media print {
  main { max-width: none; padding: 0; }
  .scroll { max-height: none; overflow: visible; border: none; }
  nav.toc { display: none; }
  h2 { break-after: avoid; }
  figure, table { break-inside: avoid; }
}
"""

REPORT_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="MedDL {{ ctx.meddl_version }}">
<title>{{ ctx.title }}</title>
<style>{{ css }}</style>
</head>
{%- macro table(t, scroll=False, total_last=False) %}
{%- if scroll %}<div class="scroll">{% endif %}
<table>
<thead><tr>{% for h in t.headers %}<th{% if t.numeric[loop.index0] %} class="num"{% endif %}>{{ h }}</th>
{%- endfor %}</tr></thead>
<tbody>
{%- for row in t.rows %}
<tr{% if total_last and loop.last %} class="total"{% endif %}>{% for cell in row %}<td
{%- if t.numeric[loop.index0] %} class="num"{% endif %}>{{ cell }}</td>{% endfor %}</tr>
{%- endfor %}
</tbody>
</table>
{%- if scroll %}</div>{% endif %}
{%- endmacro %}
{%- macro facts(items) %}
<dl class="facts">
{%- for label, value in items %}
<dt>{{ label }}</dt><dd>{{ value }}</dd>
{%- endfor %}
</dl>
{%- endmacro %}
{%- macro figure(p) %}
<figure{% if p.image | wide %} class="wide"{% endif %}>
<img src="data:image/png;base64,{{ p.image }}" alt="{{ p.title }}">
<figcaption><strong>{{ p.title }}.</strong> {{ p.caption }}</figcaption>
</figure>
{%- endmacro %}
<body>
<main>
<header class="report-header">
<h1>{{ ctx.title }}</h1>
<dl class="facts">
{%- for label, value in ctx.header %}
<dt>{{ label }}</dt><dd{% if label.startswith("Bundle hash") %} class="hash"{% endif %}>{{ value }}</dd>
{%- endfor %}
</dl>
<div class="notice" role="note"><strong>Clinical decision support — not a diagnosis</strong>{{ ctx.notice }}</div>
{%- if ctx.warnings or ctx.caveats %}
<div class="alert" role="alert">
{%- set count = (ctx.warnings | length) + (ctx.caveats | length) %}
<strong>{{ count }} warning{{ "s" if count != 1 }}</strong> — read
<a href="#warnings">Warnings</a> before relying on these results.
</div>
{%- endif %}
<nav class="toc">
<a href="#data">Data</a>
{%- if ctx.model %}<a href="#model">Model and training</a>{% endif %}
<a href="#performance">Performance</a>
{%- if ctx.importance %}<a href="#importance">Feature importance</a>{% endif %}
{%- if ctx.cross_validation %}<a href="#cross-validation">Cross-validation</a>{% endif %}
{%- if ctx.shift %}<a href="#shift">Data shift</a>{% endif %}
{%- if ctx.examples or ctx.localization %}<a href="#examples">{{ ctx.examples_heading.nav }}</a>{% endif %}
{%- for section in ctx.sections %}<a href="#{{ section.anchor }}">{{ section.title }}</a>{% endfor %}
{%- if ctx.subgroups %}<a href="#subgroups">Subgroups</a>{% endif %}
<a href="#warnings">Warnings</a>
{%- if ctx.config_yaml %}<a href="#configuration">Configuration</a>{% endif %}
</nav>
</header>

<section id="data">
<h2>{{ ctx.data.heading }}</h2>
{{ facts(ctx.data.facts) }}
<h3>Rows dropped</h3>
<p>{{ ctx.data.dropped_text }}</p>
{%- if ctx.data.dropped %}{{ table(ctx.data.dropped, total_last=True) }}{% endif %}
{%- if ctx.data.dropped_note %}<div class="alert">{{ ctx.data.dropped_note }}</div>{% endif %}
{%- if ctx.data.repairs %}
<h3>Changes made to the data</h3>
<p>MedDL changed these values to use them; each is counted here.</p>
{{ table(ctx.data.repairs) }}
{%- endif %}
{%- if ctx.data.splits %}
<h3>Splits</h3>
{{ table(ctx.data.splits) }}
{%- endif %}
{%- if ctx.data.class_balance %}
<h3>Class balance</h3>
{{ table(ctx.data.class_balance) }}
{%- endif %}
{%- if ctx.data.columns %}
<h3>Columns</h3>
<p class="muted">Missing values are counted in the rows read; the percentage is of those rows.</p>
{{ table(ctx.data.columns, scroll=ctx.data.columns.rows | length > 20) }}
{%- endif %}
{%- if ctx.data.notes %}
<h3>Notes</h3>
<ul>{% for note in ctx.data.notes %}<li>{{ note }}</li>{% endfor %}</ul>
{%- endif %}
</section>

{%- if ctx.model %}
<section id="model">
<h2>Model and training</h2>
{{ facts(ctx.model.facts) }}
{%- if ctx.model.parameters %}
<h3>Architecture arguments</h3>
{{ table(ctx.model.parameters) }}
{%- endif %}
{%- if ctx.model.training %}
<h3>Training</h3>
{{ facts(ctx.model.training) }}
{%- endif %}
{%- if ctx.model.history %}<div class="figures">{{ figure(ctx.model.history) }}</div>{% endif %}
</section>
{%- endif %}

<section id="performance">
<h2>Performance{% if ctx.performance.split != "—" %} on {{ ctx.performance.split }}{% endif %}</h2>
<p>Each value is the point estimate with its 95% confidence interval in brackets (bootstrap).
{%- if ctx.performance.n != "—" %} Evaluated on {{ ctx.performance.n }} cases.{% endif %}</p>
{{ table(ctx.performance.metrics) }}
{%- if ctx.performance.has_threshold_metrics %}
<p class="caption">† Depends on the decision threshold: a case is called positive when its predicted probability
is at or above the threshold.</p>
{%- endif %}
{%- if ctx.performance.threshold %}
<p><strong>Decision threshold:</strong> {{ ctx.performance.threshold }}</p>
{%- endif %}
{%- if ctx.performance.calibration_note %}
<p><strong>Calibration:</strong> {{ ctx.performance.calibration_note }}.</p>
{%- endif %}
{%- if ctx.performance.comparisons %}
<h3>Model compared with the baselines</h3>
<p class="muted">Paired bootstrap on the same cases. "Reading" says whether the 95% CI of the difference
excludes zero.</p>
{{ table(ctx.performance.comparisons) }}
{%- endif %}
{%- if ctx.performance.plots %}
<h3>Figures</h3>
<div class="figures">
{%- for p in ctx.performance.plots %}{{ figure(p) }}{% endfor %}
</div>
{%- endif %}
</section>

{%- if ctx.importance %}
<section id="importance">
<h2>Feature importance</h2>
{%- for block in ctx.importance %}
<h3>{{ block.title }}</h3>
<p>{{ block.explanation }}</p>
{%- if block.plot %}<div class="figures">{{ figure(block.plot) }}</div>{% endif %}
{{ table(block.table, scroll=block.table.rows | length > 20) }}
{%- endfor %}
</section>
{%- endif %}

{%- if ctx.cross_validation %}
<section id="cross-validation">
<h2>Cross-validation</h2>
<p class="muted">An estimate of how much performance varies with the choice of training data.</p>
{{ facts(ctx.cross_validation.facts) }}
{%- if ctx.cross_validation.table %}{{ table(ctx.cross_validation.table) }}{% endif %}
</section>
{%- endif %}

{%- if ctx.shift %}
<section id="shift">
<h2>Data shift</h2>
<p>{{ ctx.shift.intro }}</p>
{%- if ctx.shift.plot %}<div class="figures">{{ figure(ctx.shift.plot) }}</div>{% endif %}
{{ table(ctx.shift.table) }}
</section>
{%- endif %}

{%- if ctx.examples or ctx.localization %}
<section id="examples">
<h2>{{ ctx.examples_heading.title }}</h2>
{%- if ctx.localization %}<p>{{ ctx.localization }}</p>{% endif %}
<p class="muted">{{ ctx.examples_heading.text }}</p>
<div class="figures">
{%- for case in ctx.examples %}
<figure class="figure{% if case.image | wide %} wide{% endif %}">
<img alt="{{ case.title }}" src="data:image/png;base64,{{ case.image }}">
<figcaption><strong>{{ case.title }}.</strong> {{ case.caption }}</figcaption></figure>
{%- endfor %}
</div>
</section>
{%- endif %}

{%- for section in ctx.sections %}
<section id="{{ section.anchor }}">
<h2>{{ section.title }}</h2>
{%- for paragraph in section.text %}<p>{{ paragraph }}</p>{% endfor %}
{%- if section.table %}{{ table(section.table, scroll=section.table.rows | length > 20) }}{% endif %}
{%- if section.figures %}
<div class="figures">
{%- for case in section.figures %}
<figure class="figure{% if case.image | wide %} wide{% endif %}">
<img alt="{{ case.title }}" src="data:image/png;base64,{{ case.image }}">
<figcaption><strong>{{ case.title }}.</strong> {{ case.caption }}</figcaption></figure>
{%- endfor %}
</div>
{%- endif %}
</section>
{%- endfor %}

{%- if ctx.subgroups %}
<section id="subgroups">
<h2>Subgroups</h2>
<p class="muted">Performance within groups of patients, each with its 95% CI.</p>
{{ table(ctx.subgroups, scroll=ctx.subgroups.rows | length > 20) }}
</section>
{%- endif %}

<section id="warnings">
<h2>Warnings</h2>
{%- if ctx.warnings or ctx.caveats %}
<ul>
{%- for warning in ctx.warnings %}<li>{{ warning }}</li>{% endfor %}
{%- for caveat in ctx.caveats %}<li>{{ caveat }}</li>{% endfor %}
</ul>
{%- else %}
<p>None raised by the pipeline.</p>
{%- endif %}
</section>

{%- if ctx.config_yaml %}
<section id="configuration">
<h2>Configuration</h2>
<p class="muted">The experiment file as run.</p>
<pre>{{ ctx.config_yaml }}</pre>
</section>
{%- endif %}

<footer>Generated by MedDL {{ ctx.meddl_version }} on {{ ctx.created }}. This report is self-contained: it
loads nothing from the network.</footer>
</main>
</body>
</html>
"""

MODEL_CARD_MD = """# Model card: {{ ctx.name | md }}{% if ctx.is_external %} (external validation){% endif %}

> **Clinical decision support — not a diagnosis.** {{ ctx.notice | md }}

Reporting items follow TRIPOD+AI where software can fill them in; items that need the authors' knowledge
(clinical setting, recruitment, funding, conflicts of interest) must be added by hand.

## Model details

| Item | Value |
| --- | --- |
{%- for label, value in card.details %}
| {{ label | md }} | {{ value | md }} |
{%- endfor %}

## Intended use

- **Purpose:** decision support — an estimate of {{ ctx.target_description | md }} for a clinician to weigh
  alongside the rest of the clinical picture. It is not a diagnosis and must not be used to make decisions
  without clinical review.
- **Intended users:** clinicians and clinical data scientists.
- **Intended population:** {{ card.population | md }}
- **Out of scope:** use as a standalone diagnostic test or for automated decisions without a clinician;
  patients, care settings, sites or periods that the development data do not represent (without local
  validation); predicting any outcome other than {{ ctx.target_description | md }}; patients whose predictor
  values fall outside the ranges summarised under Data.

## Data

{{ table(card.data_facts, ["Item", "Value"]) }}

**Outcome definition:** {{ card.outcome | md }}

**Rows dropped:** {{ ctx.data.dropped_text | md }}
{%- if ctx.data.dropped %}

{{ table(ctx.data.dropped.rows, ctx.data.dropped.headers) }}
{%- endif %}
{%- if ctx.data.dropped_note %}

**Note:** {{ ctx.data.dropped_note | md }}
{%- endif %}
{%- if ctx.data.repairs %}

**Changes made to the data:**

{{ table(ctx.data.repairs.rows, ctx.data.repairs.headers) }}
{%- endif %}
{%- if ctx.data.splits %}

**Splits:**

{{ table(ctx.data.splits.rows, ctx.data.splits.headers) }}
{%- endif %}
{%- if ctx.data.class_balance %}

**Class balance:**

{{ table(ctx.data.class_balance.rows, ctx.data.class_balance.headers) }}
{%- endif %}
{%- if card.predictors %}

**Predictors ({{ card.predictors | length }}):**

{{ table(card.predictors, ["Predictor", "Type", "Missing", "Summary"]) }}
{%- endif %}
{%- if ctx.data.notes %}

**Notes:**
{% for note in ctx.data.notes %}
- {{ note | md }}
{%- endfor %}
{%- endif %}

## Model development

{{ table(card.development, ["Item", "Value"]) }}

## Performance

Evaluated on **{{ ctx.performance.split | md }}** ({{ ctx.performance.n | md }} cases). Each value is the point
estimate with its 95% bootstrap confidence interval.

{{ table(ctx.performance.metrics.rows, ctx.performance.metrics.headers) }}
{%- if ctx.performance.has_threshold_metrics %}

† Depends on the decision threshold.
{%- endif %}
{%- if ctx.performance.threshold %}

**Decision threshold:** {{ ctx.performance.threshold | md }}
{%- endif %}

**Calibration:** {{ (ctx.performance.calibration_note or "no calibration measure in this run") | md }}.
{%- if ctx.performance.comparisons %}

**Comparison with baselines** (paired bootstrap, model − baseline):

{{ table(ctx.performance.comparisons.rows, ctx.performance.comparisons.headers) }}
{%- endif %}
{%- if ctx.cross_validation %}

**Cross-validation:** {% for label, value in ctx.cross_validation.facts %}{{ label | md }}: {{ value | md }}
{%- if not loop.last %}; {% endif %}{% endfor %}.
{%- endif %}

## Explainability
{% if ctx.importance %}
{%- for block in ctx.importance %}
- **{{ block.title }}** — top features: {{ block.top | join(", ") | md }}.
{%- endfor %}

Importance shows what the model relies on, not what causes the outcome.
{%- elif ctx.sections %}
This run's explanations are summarised below (and drawn in full in its report.html).
{%- else %}
No feature attributions were computed for this run.
{%- endif %}
{%- for section in ctx.sections %}

**{{ section.title | md }}.** {% for paragraph in section.text %}{{ paragraph | md }} {% endfor %}
{%- if section.table %}

{{ table(section.table.rows[:20], section.table.headers) }}
{%- endif %}
{%- endfor %}
{%- if ctx.shift %}

**Data shift** (training data vs {{ ctx.performance.split | md }}), columns that moved most:

{{ table(ctx.shift.table.rows, ctx.shift.table.headers) }}
{%- endif %}

## Limitations
{% for item in card.limitations %}
- {{ item | md }}
{%- endfor %}

## Ethical considerations and fairness
{% if ctx.subgroups %}
Performance within the subgroups provided:

{{ table(ctx.subgroups.rows, ctx.subgroups.headers) }}

Groups not listed here were not analysed.
{%- else %}
No subgroup analysis was provided for this run: performance across sex, age groups, ethnicity, socioeconomic
status or sites is unknown. Check it before use in any population, and monitor for unequal error rates.
{%- endif %}
Predictions can reproduce biases in past care recorded in the data (who was tested, diagnosed or treated).

## How to use

```
meddl predict {{ card.run_path }} --data {{ card.usage.get("data") or "cases.csv" }} --out predictions.csv --explain
```

{{ card.usage.get("input") or "The input table needs the same predictor columns as the development data." }} In Python:
`meddl.load_bundle({{ card.run_path_python }}).predict({{ card.usage.get("python") or '"cases.csv"' }})`.
"""
