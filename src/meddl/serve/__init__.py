"""``meddl serve``: a REST API and a web page for clinicians over one or more bundles."""

from meddl.serve.main import create_app
from meddl.serve.settings import Settings, get_settings, is_loopback, read_token

__all__ = ["Settings", "create_app", "get_settings", "is_loopback", "read_token"]
