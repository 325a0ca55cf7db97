"""The single exception type raised by the SDK."""

from __future__ import annotations

from typing import Any

_NO_REQUEST_ID = "NO_REQUEST_ID"


class SdkException(Exception):
    """Error raised by every SDK call that fails (HTTP error, network error, bad reply).

    Attributes:
        message: human-readable message.
        status_code: HTTP status of the failed response, if any.
        name: error name sent by the platform (e.g. ``"NotFound"``), if any.
        request_id: platform request id, if any.
        additional_data: extra JSON data sent by the platform, if any.
    """

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        name: str | None = None,
        request_id: str | None = None,
        additional_data: Any = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.name = name
        self.request_id = request_id
        self.additional_data = additional_data
        super().__init__(message)

    def __str__(self) -> str:
        if self.name is not None:
            text = f"[{self.name}] "
        elif self.status_code is not None:
            text = f"[{self.status_code}] "
        else:
            text = ""
        if self.status_code in (502, 504):
            text += "The platform is currently unreachable. Please try again later.\n"
        text += str(self.message)
        if self.additional_data:
            text += f"\nAdditional data: {self.additional_data}"
        if self.request_id and self.request_id != _NO_REQUEST_ID:
            text += f"\nRequest id: {self.request_id}"
        return text
