"""The one exception type for expected user errors.

The CLI shows a `TitoError` as one red line and exits with code 1 - never a traceback.
Anything else escaping is a bug in tito, and keeps its traceback.
"""


class TitoError(Exception):
    """An expected, user-facing error: bad id, locked milestone, missing workspace, ..."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint  # an optional second line: the command that fixes it
