"""Users of the control API."""

from __future__ import annotations

from typing import Any

from .base import SdkBase


class UsersMixin(SdkBase):
    def who_am_i(self) -> dict[str, Any]:
        """Get the information of the current user.

        Returns:
            dict with the keys ``id``, ``name`` and ``email``.
        """
        user = self._get(self._ctl("users/me")) or {}
        return {key: value for key, value in user.items() if key in ("id", "name", "email")}

    def get_user(self, user_id: str) -> dict[str, Any]:
        """Get information about a user.

        Returns:
            dict with the keys ``id``, ``name`` and ``email``.
        """
        return self._get(self._ctl(f"users/{user_id}"))
