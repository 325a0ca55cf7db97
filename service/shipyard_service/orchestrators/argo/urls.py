"""Signed URLs for pods: kept in orchestrators/artifact_urls.py, shared with sandboxed local
runners."""

from ..artifact_urls import ARTIFACT_SALT, artifact_url, remote_inputs

__all__ = ["ARTIFACT_SALT", "artifact_url", "remote_inputs"]
