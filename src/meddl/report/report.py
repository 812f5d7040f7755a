"""The HTML report: one self-contained file (inline CSS, figures as base64 PNG, no scripts, no network)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from meddl.report._context import build_context
from meddl.report._format import write_text_output
from meddl.report._templates import REPORT_CSS, REPORT_HTML

__all__ = ["render_report", "write_report"]


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    environment.filters["wide"] = _wide_png
    return environment.from_string(REPORT_HTML)


WIDE_ASPECT = 3.0
"""A figure at least this many times wider than tall (a sequence logo, a long trace) spans the page's width: in
a half-width column it would be shrunk until its letters cannot be read."""


def _wide_png(image: object) -> bool:
    """Whether a base64 PNG is a wide figure (width / height ≥ :data:`WIDE_ASPECT`), read from its IHDR header."""
    import base64
    import struct

    try:
        header = base64.b64decode(str(image)[:32])
        width, height = struct.unpack(">II", header[16:24])
    except (ValueError, struct.error):
        return False
    return height > 0 and width / height >= WIDE_ASPECT


def render_report(run: Mapping[str, Any]) -> str:
    """Render the HTML report of a run.

    Every value from the run record is HTML-escaped. Optional sections that are absent from the record are
    left out; missing values are shown as "—".

    Args:
        run: The run record built by the pipeline. Required keys: ``kind`` (``"train"`` or
            ``"external_evaluation"``), ``name``, ``task`` and ``evaluation.model``; every other section
            (``data``, ``model``, ``training``, ``evaluation.baselines``, ``evaluation.comparisons``,
            ``explanations``, ``cross_validation``, ``shift``, ``subgroups``, ``warnings``, ``config_yaml``,
            ...) is optional.

    Returns:
        The HTML document.

    Raises:
        ValueError: If a required key is missing, ``kind`` is unknown, or a curve is malformed (lists of
            different lengths, non-numbers).
    """
    context = build_context(run, with_plots=True)
    return _template().render(ctx=context, css=REPORT_CSS)


def write_report(run: Mapping[str, Any], path: Path) -> Path:
    """Write the HTML report of a run.

    Args:
        run: The run record (see :func:`render_report`).
        path: The file to write, or a folder, in which case ``report.html`` is written inside it.
            Missing parent folders are created.

    Returns:
        The path of the written file.

    Raises:
        ValueError: As :func:`render_report`.
    """
    return write_text_output(render_report(run), path, "report.html")
