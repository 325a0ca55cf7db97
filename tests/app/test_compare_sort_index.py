"""The comparison page sorted by an input the sort indexer has not reached (an app without
background work indexes nothing): rows merged from the executions' JSON while they are
few, and past TAIL_LIMIT the page reads every execution and says so."""

from __future__ import annotations

import datetime as dt
import re

from shipyard_service.domain import comparison
from shipyard_service.domain.projects import get_environment
from shipyard_service.store.models import Execution

from .conftest import ui_session

COMPARE = "/ui/projects/default/environments/dev/compare?sort=in:lr&dir=asc"


def test_an_input_sort_says_when_it_read_every_execution(make_app, monkeypatch):
    app = make_app()
    with app.app_context():
        env = get_environment("default", "dev")
        for i, lr in enumerate((0.3, 0.1, 0.2)):
            Execution.create(execution_id=f"e-{i}", environment=env, pipeline_name="p",
                             status="Succeeded", created_at=dt.datetime(2026, 1, 1, 0, 0, i),
                             inputs=[{"pipeline_input_name": "lr", "data_type": "number",
                                      "value": lr}])
    http = ui_session(app)
    for limit, notice in ((comparison.TAIL_LIMIT, False), (2, True)):
        monkeypatch.setattr(comparison, "TAIL_LIMIT", limit)
        page = http.get(COMPARE).get_data(as_text=True)
        assert re.findall(r'<tr data-execution="([^"]+)"', page) == ["e-1", "e-2", "e-0"]
        assert ('id="sort-catching-up"' in page) is notice
