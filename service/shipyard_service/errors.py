"""The one error hierarchy of the service.

    ShipyardError                 500  anything unexpected but deliberate
     ├── BadRequest               400  malformed or invalid input
     │    └── PayloadTooLarge     413  an upload or value over a documented limit
     ├── Unauthorized             401  missing, expired or invalid credentials
     ├── Forbidden                403  valid credentials, action not allowed (execution scope)
     ├── NotFound                 404
     ├── Conflict                 409  duplicate names, objects still in use
     ├── TooManyRequests          429  too many failed logins (per account, per address)
     └── ExecutionFailed          500  a user function failed (results routes)

Every error is rendered as {"message", "name", "request_id", "additional_data"}.
"""

from __future__ import annotations

from typing import Any


class ShipyardError(Exception):
    status_code = 500
    name = "InternalError"

    def __init__(self, message: str, additional_data: Any = None, *, name: str | None = None):
        super().__init__(message)
        self.message = message
        self.additional_data = additional_data
        if name:
            self.name = name


class BadRequest(ShipyardError):
    status_code = 400
    name = "BadRequest"


class PayloadTooLarge(BadRequest):
    status_code = 413
    name = "PayloadTooLarge"


class Unauthorized(ShipyardError):
    status_code = 401
    name = "Unauthorized"


class Forbidden(ShipyardError):
    status_code = 403
    name = "Forbidden"


class NotFound(ShipyardError):
    status_code = 404
    name = "NotFound"


class Conflict(ShipyardError):
    status_code = 409
    name = "Conflict"


class TooManyRequests(ShipyardError):
    status_code = 429
    name = "TooManyRequests"


class ExecutionFailed(ShipyardError):
    status_code = 500
    name = "ExecutionFailed"
