"""Short-lived signed tokens for URLs that carry no credentials (presigned data-store URLs,
step archive downloads, multipart upload configurations).

Built on itsdangerous so the HMAC, encoding and timestamp handling are not hand-rolled.
Each use gets its own salt, so a token minted for one purpose is never valid for another.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from .errors import Forbidden


class InvalidSignature(Forbidden):
    """The token was not made by this server, was altered, or is for another purpose."""

    name = "AccessDenied"


class ExpiredSignature(Forbidden):
    """The token is genuine but older than its lifetime."""

    name = "ExpiredToken"


class Signer:
    def __init__(self, secret: str, salt: str):
        if not secret:
            raise ValueError("a signing secret is required")
        self._serializer = URLSafeTimedSerializer(secret, salt=salt)

    def sign(self, payload: dict[str, Any]) -> str:
        return self._serializer.dumps(payload)

    def verify(self, token: str, max_age_s: int) -> dict[str, Any]:
        """The signed payload; ExpiredSignature or InvalidSignature (both 403) otherwise."""
        if not isinstance(token, str) or not token:
            raise InvalidSignature("Missing signature token")
        try:
            payload = self._serializer.loads(token, max_age=max_age_s)
        except SignatureExpired as exc:
            # Checked first: SignatureExpired is itself a BadData.
            raise ExpiredSignature("The signed URL has expired") from exc
        except BadData as exc:
            raise InvalidSignature("The signature is invalid") from exc
        if not isinstance(payload, dict):
            raise InvalidSignature("The signature is invalid")
        return payload
