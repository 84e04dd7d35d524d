"""The API's one error shape, ``{"error": ..., "detail": ...}``, shared by every router."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: object, headers: dict[str, str] | None = None) -> None:
        self.status, self.error, self.detail, self.headers = status, error, detail, headers
