"""HTTP transport: one session, lazy token refresh, response decoding (contract §1, §2)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from xml.etree import ElementTree

import jwt
import requests

from ._execution_context import get_execution_id
from ._version import __version__
from .exceptions import SdkException

try:  # the `fast` extra: decodes pages of metrics several times faster than json
    import orjson
except ImportError:  # pragma: no cover - depends on the install
    orjson = None  # type: ignore[assignment]

CLIENT_HEADER = "craft-ai-client"
CLIENT_HEADER_VALUE = f"shipyard-sdk@{__version__}"
#: Refresh the access token when it expires in less than this many seconds.
ACCESS_TOKEN_MARGIN_S = 30.0

_FORBIDDEN_IN_EXECUTION_HINT = (
    "Insufficient permissions. This is probably because you called an SDK function that "
    "is not permitted from inside a running deployment or execution, even if it works "
    "from your computer. Original error: "
)


def _is_raw_content(response: requests.Response) -> bool:
    content_type = response.headers.get("content-type", "")
    return "application/octet-stream" in content_type or "text/csv" in content_type


def decode_json(content: bytes) -> Any:
    """The JSON value of a body; ``ValueError`` if it is not JSON. With orjson when it is
    installed; the json module decodes what orjson refuses (NaN, integers past 64 bits)."""
    if orjson is not None:
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    return json.loads(content)


def raise_error(response: requests.Response) -> None:
    """Raise the :class:`SdkException` described by an error response (§1.3)."""
    try:
        body = decode_json(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SdkException(
            f"The server returned an invalid response content. Content being:\n'{response.text}'",
            status_code=response.status_code,
        )
    message = body.get("message") or "The server returned an error"
    if response.status_code == 403 and get_execution_id() is not None:
        message = _FORBIDDEN_IN_EXECUTION_HINT + str(message)
    raise SdkException(
        message,
        status_code=response.status_code,
        name=body.get("name"),
        request_id=body.get("request_id"),
        additional_data=body.get("additional_data"),
    )


def parse_response(response: requests.Response) -> Any:
    """Decode a platform response (§1.2).

    2xx/3xx: raw bytes for octet-stream or CSV, ``None`` for 204 or a bare ``OK``,
    otherwise the JSON value. Any other status raises :class:`SdkException`.
    """
    if 200 <= response.status_code < 400:
        if _is_raw_content(response):
            return response.content
        if response.status_code == 204 or response.content == b"OK":
            return None
        try:
            return decode_json(response.content)
        except ValueError:
            raise SdkException(
                f"Unable to decode response data into json. Data being:\n'{response.text}'",
                status_code=response.status_code,
            ) from None
    raise_error(response)


def raise_storage_error(response: requests.Response) -> None:
    """Raise the error of a presigned-URL response (XML ``Code``/``Message``, §6.7.6)."""
    raise storage_error(response.status_code, response.text)


def storage_error(status_code: int, text: str) -> SdkException:
    """The error a presigned-URL response with this status and body describes."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        root = None
    if root is not None:
        details = {child.tag: child.text for child in root}
        if "Code" in details and "Message" in details:
            name = details.pop("Code")
            message = details.pop("Message")
            return SdkException(
                message or "",
                status_code=status_code,
                name=name,
                additional_data=details,
            )
    return SdkException(
        f"Unable to decode response from the data store: Content being:\n'{text}'",
        status_code=status_code,
    )


def check_storage_response(response: requests.Response) -> None:
    """Raise unless a presigned-URL response is a success (2xx)."""
    if not 200 <= response.status_code < 300:
        raise_storage_error(response)


class HttpClient:
    """Sends every request of one SDK instance through a single ``requests.Session``.

    Authenticated calls carry ``Authorization: Bearer <access token>``. The access token
    is obtained lazily from ``POST {control}/api/v1/auth/refresh``, refreshed when it
    expires in less than 30 s, and forgotten after any 401 response.
    """

    def __init__(self, control_api_url: str, refresh_token: str) -> None:
        self.control_api_url = control_api_url
        self._refresh_token = refresh_token
        self.session = requests.Session()
        self.session.headers[CLIENT_HEADER] = CLIENT_HEADER_VALUE
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._access_token_exp: float | None = None

    # ----- access token -----

    def _token_is_fresh(self) -> bool:
        if self._access_token is None:
            return False
        if self._access_token_exp is None:
            return True
        return self._access_token_exp >= time.time() + ACCESS_TOKEN_MARGIN_S

    def _refresh(self) -> None:
        response = self.send_unauthenticated(
            "POST",
            f"{self.control_api_url}/auth/refresh",
            json={"refresh_token": self._refresh_token},
        )
        body = parse_response(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise SdkException(
                "The authentication server did not return an access token.",
                status_code=response.status_code,
            )
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise SdkException(f"Invalid access token received: {error}") from error
        exp = claims.get("exp")
        self._access_token = token
        self._access_token_exp = float(exp) if isinstance(exp, (int, float)) else None

    def access_token(self) -> str:
        """Return a valid access token, refreshing it first if needed."""
        with self._lock:
            if not self._token_is_fresh():
                self._refresh()
            return self._access_token  # type: ignore[return-value]

    def clear_access_token(self) -> None:
        with self._lock:
            self._access_token = None
            self._access_token_exp = None

    # ----- requests -----

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, url, **kwargs)
        except requests.exceptions.InvalidJSONError as error:
            # NaN or an infinity among the values: JSON cannot carry them (nothing was sent).
            raise _unsendable(error) from error
        except requests.RequestException as error:
            raise SdkException("Unable to perform the request", name="RequestError") from error

    def send(
        self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        """Authenticated request; returns the raw response (a 401 drops the token)."""
        all_headers = {"Authorization": f"Bearer {self.access_token()}"}
        if headers:
            all_headers.update(headers)
        response = self._send(method, url, headers=all_headers, **kwargs)
        if response.status_code == 401:
            self.clear_access_token()
        return response

    def call(self, method: str, url: str, **kwargs: Any) -> Any:
        """Authenticated request; returns the decoded body (see :func:`parse_response`)."""
        return parse_response(self.send(method, url, **kwargs))

    def send_unauthenticated(
        self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        """Request without ``Authorization`` but with the client header."""
        return self._send(method, url, headers=headers, **kwargs)

    def send_bare(
        self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        """Request with no SDK header at all (presigned URLs, endpoint results)."""
        all_headers: dict[str, str | None] = {CLIENT_HEADER: None}
        if headers:
            all_headers.update(headers)
        return self._send(method, url, headers=all_headers, **kwargs)


def json_body(value: Any) -> bytes:
    """`value` as a JSON request body, or the `InvalidValue` error `json=` would raise: for
    a call sent in several requests, so a bad value in a later one stops all of them."""
    try:
        return json.dumps(value, allow_nan=False).encode()
    except ValueError as error:
        raise _unsendable(error) from error


def _unsendable(error: Exception) -> SdkException:
    return SdkException(f"NaN and infinite numbers cannot be sent, JSON cannot carry them "
                        f"({error})", name="InvalidValue")
