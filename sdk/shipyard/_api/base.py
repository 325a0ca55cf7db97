"""State and request helpers shared by every group of SDK methods."""

from __future__ import annotations

import time
from typing import Any

from .._http import HttpClient


class SdkBase:
    """Attributes set by :class:`shipyard.CraftAiSdk` and thin request helpers."""

    base_environment_url: str
    base_environment_api_url: str
    base_control_url: str
    base_control_api_url: str
    verbose_log: bool
    _http: HttpClient
    _MULTIPART_THRESHOLD: int
    _MULTIPART_PART_SIZE: int
    _get_time = staticmethod(time.time)

    def _env(self, path: str) -> str:
        """Absolute URL of an environment API route (``{env}/api/v1/<path>``)."""
        return f"{self.base_environment_api_url}/{path}"

    def _ctl(self, path: str) -> str:
        """Absolute URL of a control API route (``{ctl}/api/v1/<path>``)."""
        return f"{self.base_control_api_url}/{path}"

    def _get(self, url: str, **kwargs: Any) -> Any:
        return self._http.call("GET", url, **kwargs)

    def _post(self, url: str, **kwargs: Any) -> Any:
        return self._http.call("POST", url, **kwargs)

    def _put(self, url: str, **kwargs: Any) -> Any:
        return self._http.call("PUT", url, **kwargs)

    def _patch(self, url: str, **kwargs: Any) -> Any:
        return self._http.call("PATCH", url, **kwargs)

    def _delete(self, url: str, **kwargs: Any) -> Any:
        return self._http.call("DELETE", url, **kwargs)

    def _progress_allowed(self) -> bool:
        return bool(getattr(self, "_progress_enabled", True))
