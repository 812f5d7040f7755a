"""The clinicians' page: one self-contained HTML document (inline CSS and JavaScript, no external URL).

The page reads everything from the JSON API (``/models``, ``/models/{name}``, ``/models/{name}/explain``), so
the server sends the same static bytes to everyone. Every value that comes from the API is written with
``textContent`` and never parsed as HTML. A Content-Security-Policy that allows only this script and this
stylesheet (by hash) and only same-origin requests backs that up.

Kept as Python strings because the package ships no data files from this folder: the stylesheet, the script
and the HTML body live in :mod:`meddl.serve._page_style`, :mod:`meddl.serve._page_script` and
:mod:`meddl.serve._page_body`; this module puts them together and computes the headers.
"""

from __future__ import annotations

import base64
import hashlib

from meddl.serve._page_body import BODY
from meddl.serve._page_script import SCRIPT
from meddl.serve._page_style import STYLE

__all__ = ["BODY", "PAGE_HEADERS", "PAGE_HTML", "SCRIPT", "STYLE"]


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
