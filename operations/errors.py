"""Outcome codes of docs/domain.md §13 as one exception type."""

from __future__ import annotations


class OperationError(Exception):
    """A refused operation: nothing was changed.

    ``code`` is the outcome code of docs/domain.md §13 (e.g. ``ALREADY_ANSWERED``),
    ``status`` the HTTP status a REST edge would answer, ``details`` extra data
    such as the ids that were missing.
    """

    def __init__(self, code: str, message: str, *, status: int = 400, details: dict | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.details = details or {}

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, **self.details}
