"""The one way handlers fail: an HTTP status with the service's `{"error": ...}` body."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str = "DLQ message not found") -> ApiError:
    return ApiError(404, message)
