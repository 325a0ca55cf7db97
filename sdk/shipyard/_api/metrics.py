"""Pipeline metrics (recorded from inside executions, §6.9) and resource metrics (§6.10)."""

from __future__ import annotations

import gc
import warnings
from contextlib import contextmanager
from datetime import datetime
from itertools import repeat
from typing import Any, Iterator, Sequence

from .._dates import to_epoch_ms
from .._execution_context import get_execution_id
from .._http import json_body
from .._logging import logged
from ..exceptions import SdkException
from .base import SdkBase

#: Values sent per ``list-values`` request.
LIST_VALUES_BATCH_SIZE = 10_000
#: Rows requested per page (``format=columns``: the server's hard caps).
METRICS_PAGE_SIZE = {"single-value": 50_000, "list-values": 5_000}
#: The page size of servers older than ``format=columns`` (the official client's).
OBJECTS_PAGE_SIZE = 5_000
_ROW_FIELDS = ("name", "created_at", "execution_id", "deployment_name", "pipeline_name")

_OUTSIDE_EXECUTION = "You cannot send a metric outside a step code, the metric has not been sent"


class MetricsMixin(SdkBase):
    warn_on_metric_outside_of_step: bool

    def _metric_execution_id(self) -> str | None:
        execution_id = get_execution_id()
        if not execution_id and self.warn_on_metric_outside_of_step:
            warnings.warn(_OUTSIDE_EXECUTION, stacklevel=4)
        return execution_id or None

    @logged("Pipeline metrics definition", get_execution_id)
    def record_metric_value(self, name: str, value: float) -> bool:
        """Create or update a metric of the current execution (inside a step only).

        Returns:
            True if sent, False outside an execution (nothing is sent).
        """
        execution_id = self._metric_execution_id()
        if execution_id is None:
            return False
        self._put(
            self._env(f"metrics/single-value/{name}"),
            json={"value": value, "execution_id": execution_id},
        )
        return True

    @logged("Pipeline list metric definition", get_execution_id)
    def record_list_metric_values(self, name: str, values: float | Sequence[float]) -> bool:
        """Append values to a list metric of the current execution (inside a step only).

        Returns:
            True if sent, False outside an execution (nothing is sent).
        """
        execution_id = self._metric_execution_id()
        if execution_id is None:
            return False
        if not isinstance(values, list):
            values = list(values) if isinstance(values, (tuple, range)) else [values]
        # Every batch is encoded before the first is sent: a NaN in the last one records none.
        bodies = [
            json_body({"values": values[start : start + LIST_VALUES_BATCH_SIZE],
                       "execution_id": execution_id})
            for start in range(0, len(values), LIST_VALUES_BATCH_SIZE)
        ]
        url = self._env(f"metrics/list-values/{name}")
        for body in bodies:
            self._post(url, data=body, headers={"Content-Type": "application/json"})
        return True

    def _metric_pages(
        self,
        kind: str,
        name: str | None,
        pipeline_name: str | None,
        deployment_name: str | None,
        execution_id: str | None,
    ) -> list[dict[str, Any]]:
        # Pages in columns (each field once as an array): no key repeated per row, and up to
        # 50,000 rows a request, so 20,000 metrics take one round trip instead of four.
        params: dict[str, Any] = {
            "filters[name]": name,
            "filters[pipeline_name]": pipeline_name,
            "filters[deployment_name]": deployment_name,
            "filters[execution_id]": execution_id,
            "items_per_page": METRICS_PAGE_SIZE[kind],
            "page": 1,
            "format": "columns",
        }
        params = {key: value for key, value in params.items() if value is not None}
        url = self._env(f"metrics/{kind}")
        metrics: list[dict[str, Any]] = []
        with _gc_paused():
            while True:
                try:
                    page = self._get(url, params=params)
                except SdkException as error:
                    # A server older than format=columns refuses a page over its own cap
                    # with a 400: it gets the page size it knows.
                    if error.status_code != 400 or params["items_per_page"] <= OBJECTS_PAGE_SIZE:
                        raise
                    params["items_per_page"] = OBJECTS_PAGE_SIZE
                    continue
                received = _rows(page, lists=kind == "list-values")
                metrics.extend(received)
                if not received or len(metrics) >= (page.get("total_count") or 0):
                    return metrics
                params["page"] += 1

    @logged("Pipeline metrics listing")
    def get_metrics(
        self,
        name: str | None = None,
        pipeline_name: str | None = None,
        deployment_name: str | None = None,
        execution_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """List single-value metrics (``name``, ``value``, ``created_at``,
        ``execution_id``, ``deployment_name``, ``pipeline_name``). Give at most one of
        ``pipeline_name``, ``deployment_name`` and ``execution_id``."""
        return self._metric_pages(
            "single-value", name, pipeline_name, deployment_name, execution_id
        )

    @logged("Pipeline list metrics listing")
    def get_list_metrics(
        self,
        name: str | None = None,
        pipeline_name: str | None = None,
        deployment_name: str | None = None,
        execution_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """List list metrics (``name``, ``values``, ``created_at``, ``execution_id``,
        ``deployment_name``, ``pipeline_name``). Give at most one of
        ``pipeline_name``, ``deployment_name`` and ``execution_id``."""
        return self._metric_pages("list-values", name, pipeline_name, deployment_name, execution_id)

    def get_resource_metrics(
        self, start_date: datetime, end_date: datetime, csv: bool = False
    ) -> dict[str, Any] | bytes:
        """Get the resource usage of the environment between two dates.

        Returns:
            CSV bytes when ``csv`` is True, else a dict with ``additional_data``
            (``total_disk``, ``total_ram``, ``total_vram``) and ``metrics``
            (``cpu_usage``, ``disk_usage``, ``ram_usage``, ``network_input_usage``,
            ``network_output_usage``, ``gpu_usage``, ``vram_usage``).
        """
        url = self._env(
            f"resource-metrics?start={to_epoch_ms(start_date)}&end={to_epoch_ms(end_date)}"
            f"&download={'True' if csv else 'False'}"
        )
        return self._get(url)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic collector paused while a page is decoded and made into objects: they form
    no cycle, but making 20,000 of them starts passes over every object the program holds
    (a third of the time of a page of lists)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _rows(page: dict[str, Any], lists: bool) -> list[dict[str, Any]]:
    """The metric objects of a ``format=columns`` page, as the ``objects`` format holds them
    (same keys in the same order; a list's ``value`` and ``values`` are two equal lists).
    A server that does not know the format answers the objects themselves."""
    if "columns" not in page:
        return list(page.get("metrics") or [])
    columns, constant = page["columns"], page.get("constant") or {}
    values = columns.get("values" if lists else "value") or []
    names, created, executions, deployments, pipelines = (
        columns[key] if key in columns else repeat(constant.get(key)) for key in _ROW_FIELDS
    )
    rows = zip(names, created, executions, deployments, pipelines, values)
    if lists:
        return [
            {"name": n, "created_at": c, "execution_id": e, "deployment_name": d,
             "pipeline_name": p, "value": v, "values": v[:]}
            for n, c, e, d, p, v in rows
        ]
    return [
        {"name": n, "created_at": c, "execution_id": e, "deployment_name": d,
         "pipeline_name": p, "value": v}
        for n, c, e, d, p, v in rows
    ]
