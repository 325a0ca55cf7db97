"""The app's services for UI views (the same object the API handlers use)."""

from __future__ import annotations

from flask import current_app

from ..config import Settings
from ..services import Services


def services() -> Services:
    return current_app.extensions["shipyard"]


def settings() -> Settings:
    return services().settings
