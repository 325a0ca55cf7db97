"""Endpoint deployments: trigger, results, token renewal (contract §6.6)."""

from __future__ import annotations

import io
import warnings
from typing import Any
from urllib.parse import urlencode

from .._http import parse_response
from .._logging import logged
from .base import SdkBase

EXECUTION_ID_HEADER = "Craft-Ai-Execution-Id"


def _output_name_from_disposition(disposition: str, execution_id: str) -> str:
    """Output name of a file result: what follows the first ``_<execution_id>_`` of the
    ``Content-Disposition`` filename."""
    _, found, name = disposition.partition(f"_{execution_id}_")
    if found:
        return name
    _, found, filename = disposition.partition("filename=")
    return filename.strip().strip('"') if found else ""


class EndpointsMixin(SdkBase):
    def _endpoint_url_path(self, endpoint_name: str) -> str:
        deployment = self.get_deployment(endpoint_name)  # type: ignore[attr-defined]
        if deployment.get("execution_rule", "") != "endpoint":
            raise ValueError(f"Deployment {endpoint_name} is not an endpoint deployment")
        return deployment.get("endpoint_url_path", "") or ""

    @logged("Endpoint trigger")
    def trigger_endpoint(
        self,
        endpoint_name: str,
        endpoint_token: str,
        inputs: dict[str, Any] | None = None,
        wait_for_results: bool = True,
        wait_for_completion: bool | None = None,
    ) -> dict[str, Any]:
        """Trigger an endpoint deployment.

        Args:
            endpoint_name: name of the deployment.
            endpoint_token: token of the endpoint (``endpoint_token`` of the deployment).
            inputs: input values by name; a file input takes a readable binary file
                object. When a file is given, only files are sent.
            wait_for_results: wait for the execution and return its outputs
                (craft-ai-sdk 0.60 calls this argument ``wait_for_completion``, which is
                accepted too and wins when given).

        Returns:
            ``{"execution_id": …}``, plus ``"outputs"`` when waiting for the results.
        """
        if wait_for_completion is not None:
            wait_for_results = wait_for_completion
        url_path = self._endpoint_url_path(endpoint_name)
        body: dict[str, Any] = {}
        files: dict[str, Any] = {}
        for name, value in (inputs or {}).items():
            if isinstance(value, io.IOBase) and value.readable():
                files[name] = value
            else:
                body[name] = value
        if files and body:
            warnings.warn(
                "When a file input is given, the other endpoint inputs are not sent: "
                f"{sorted(body)} will take their default values.",
                stacklevel=3,
            )
        request: dict[str, Any] = {"files": files} if files else {"json": body}
        response = self._http.send_unauthenticated(
            "POST",
            f"{self.base_environment_url}/endpoints/{url_path}",
            headers={"Authorization": f"EndpointToken {endpoint_token}"},
            allow_redirects=False,
            **request,
        )
        answer = parse_response(response)
        execution_id = response.headers.get(EXECUTION_ID_HEADER) or ""
        if not execution_id and isinstance(answer, dict):
            execution_id = str(answer.get("execution_id") or "")
        if wait_for_results and 200 <= response.status_code < 400:
            return self.retrieve_endpoint_results(endpoint_name, execution_id, endpoint_token)
        return {"execution_id": execution_id}

    @logged("Endpoint result retrieval")
    def retrieve_endpoint_results(
        self, endpoint_name: str, execution_id: str, endpoint_token: str
    ) -> dict[str, Any]:
        """Wait for an endpoint execution and return its results.

        Returns:
            ``{"outputs": {name: value}, "execution_id": …}``; a file output is bytes.
        """
        url_path = self._endpoint_url_path(endpoint_name)
        query = urlencode({"token": endpoint_token})
        response = self._http.send_bare(
            "GET",
            f"{self.base_environment_url}/endpoints/{url_path}/executions/{execution_id}?{query}",
        )
        content_type = response.headers.get("Content-Type", "")
        if 200 <= response.status_code < 400 and "application/octet-stream" in content_type:
            name = _output_name_from_disposition(
                response.headers.get("Content-Disposition", ""), execution_id
            )
            return {"outputs": {name: response.content}, "execution_id": execution_id}
        results = parse_response(response)
        if not isinstance(results, dict):
            results = {"outputs": results}
        return {**results, "execution_id": execution_id}

    def generate_new_endpoint_token(self, endpoint_name: str) -> dict[str, str]:
        """Replace the token of an endpoint deployment. Returns ``{"endpoint_token"}``."""
        return self._post(self._env(f"endpoints/{endpoint_name}/generate-new-token"))
