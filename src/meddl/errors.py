"""The one exception type that reaches a user as a message, not a traceback."""

from __future__ import annotations

__all__ = ["MedDLError"]


class MedDLError(Exception):
    """A problem with the user's data, files or configuration.

    The message must name the file, row, column or field at fault and the value received,
    so the CLI can print it as one line and exit non-zero.
    """
