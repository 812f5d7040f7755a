"""Reports of a run: a self-contained HTML report and a TRIPOD+AI-style model card.

Both are generated from one plain dict, the run record, that the pipeline builds after training or after an
external evaluation. The HTML file embeds its figures and styles and loads nothing from the network, so it
can be mailed or archived as it is.
"""

from __future__ import annotations

from meddl.report import plots
from meddl.report.model_card import render_model_card, write_model_card
from meddl.report.report import render_report, write_report

__all__ = ["plots", "render_model_card", "render_report", "write_model_card", "write_report"]
