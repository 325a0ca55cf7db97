"""Pure graph rules of multi-step pipelines (domain/graph.py)."""

from __future__ import annotations

import pytest
from shipyard_service.domain.graph import as_declarations, build_graph
from shipyard_service.errors import BadRequest


def _decl(inputs=(), outputs=()):
    return {"inputs": [{"name": n, "data_type": t, "is_required": True} for n, t in inputs],
            "outputs": [{"name": n, "data_type": t} for n, t in outputs]}


STEPS = {
    "a": _decl([("seed", "number")], [("x", "number"), ("f", "file")]),
    "b": _decl([("x", "number"), ("seed", "number")], [("y", "number")]),
    "c": _decl([("f", "file")], [("z", "string")]),
    "d": _decl([("y", "number"), ("z", "string")], [("out", "json")]),
}


def test_diamond_order_and_open_io():
    graph = build_graph(["a", "b", "c", "d"], STEPS,
                        [("a.x", "b.x"), ("a.f", "c.f"), ("b.y", "d.y"), ("c.z", "d.z")])
    assert graph.upstream == {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}}
    assert graph.order.index("a") == 0 and graph.order[-1] == "d"
    # One open name used by two steps feeds both.
    assert graph.open_inputs == [{"name": "seed", "data_type": "number", "is_required": True,
                                  "default_value": None, "steps": ["a", "b"]}]
    assert graph.open_outputs == [{"name": "out", "data_type": "json", "step_name": "d"}]
    assert as_declarations(graph)[1] == [{"name": "out", "data_type": "json"}]
    assert graph.downstream("b") == {"d"} and graph.downstream("a") == {"b", "c", "d"}


def test_shared_open_input_types_must_agree():
    steps = {"p": _decl([("k", "number")], [("o1", "string")]),
             "q": _decl([("k", "string")], [("o2", "string")])}
    with pytest.raises(BadRequest, match="Open input 'k' is a number for step 'p'"):
        build_graph(["p", "q"], steps, [])


def test_self_connection_is_a_cycle():
    with pytest.raises(BadRequest, match="cycle: b -> b"):
        build_graph(["a", "b"], {**STEPS, "b": _decl([("x", "number")], [("x", "number")])},
                    [("b.x", "b.x")])
