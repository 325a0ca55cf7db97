"""Object storage for environments' data stores: local folder or S3 (MinIO).

`make_datastore(settings)` picks the backend from `settings.datastore` (SHIPYARD_DATASTORE),
so nothing above this package knows which one runs."""

from __future__ import annotations

from ..config import Settings
from .base import DataStore, ObjectInfo

__all__ = ["DataStore", "ObjectInfo", "make_datastore"]


def make_datastore(settings: Settings, secret: str) -> DataStore:
    """The configured data store. `secret` signs the local store's URLs (S3 signs its own)."""
    kind = (settings.datastore or "local").lower()
    if kind == "local":
        from .local import LocalDataStore

        return LocalDataStore(settings.data_dir / "datastore", settings.public_url, secret,
                              settings.signed_url_lifetime_s)
    if kind == "s3":
        from .s3 import S3DataStore

        return S3DataStore.from_settings(settings)
    raise ValueError(f"Unknown SHIPYARD_DATASTORE {settings.datastore!r}: use 'local' or 's3'")
