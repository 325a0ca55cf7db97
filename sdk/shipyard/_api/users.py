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
        """Get information about a user: yourself, a user sharing a project with you (such
        as the ``created_by`` of what you see), or anyone for a platform admin; any other
        id is not found.

        Returns:
            dict with the keys ``id``, ``name`` and ``email``.
        """
        return self._get(self._ctl(f"users/{user_id}"))

    # Platform admins only -----------------------------------------------------------------
    def list_users(self) -> list[dict[str, Any]]:
        """Every user (``id``, ``name``, ``email``, ``is_platform_admin``, ``disabled``)."""
        return self._get(self._ctl("users"))

    def create_user(
        self, name: str, email: str, password: str | None = None,
        is_platform_admin: bool = False,
    ) -> dict[str, Any]:
        """Create a user; the answer carries its ``sdk_token``, shown only this once. A
        plain user is in no project until given a role (``set_project_member_role``)."""
        body: dict[str, Any] = {"name": name, "email": email,
                                "is_platform_admin": is_platform_admin}
        if password is not None:
            body["password"] = password
        return self._post(self._ctl("users"), json=body)

    def set_user_disabled(self, user_id: str, disabled: bool = True) -> dict[str, Any]:
        """Disable (or enable again) a user: a disabled one can no longer log in nor use
        its tokens."""
        return self._patch(self._ctl(f"users/{user_id}"), json={"disabled": disabled})
