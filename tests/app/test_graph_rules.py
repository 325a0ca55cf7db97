"""Creating a multi-step pipeline (domain/graph.py through POST /pipelines): every bad graph
is a 400 naming its fault, and nothing is stored."""

from __future__ import annotations

import pytest

from .conftest import add_step, assert_error


def _in(name: str, data_type: str) -> dict:
    return {"name": name, "data_type": data_type}


STEPS = {
    "g-a": ([_in("text", "string")], [_in("num", "number"), _in("data", "file")]),
    "g-b": ([_in("num", "number"), _in("data", "file")], [_in("b_out", "number")]),
    "g-c": ([_in("data", "file")], [_in("c_file", "file")]),
    "g-boom": ([_in("num", "number")], [_in("b_out", "number")]),
    "g-text": ([_in("num", "string")], [_in("t_out", "string")]),
}


@pytest.fixture(scope="module")
def steps(app):
    for name, (inputs, outputs) in STEPS.items():
        add_step(app, name, inputs, outputs)


@pytest.mark.parametrize("body, words", [
    ({"step_names": ["g-a", "g-a"]}, "listed twice"),
    ({"step_names": ["g-a", "g-b"], "connections": [{"source": "g-a.zz", "target": "g-b.num"}]},
     "no output 'zz'"),
    ({"step_names": ["g-a", "g-b"], "connections": [{"source": "g-a.num", "target": "g-b.zz"}]},
     "no input 'zz'"),
    ({"step_names": ["g-a", "g-b"], "connections": [{"source": "g-x.num", "target": "g-b.num"}]},
     "'g-x' is not in"),
    ({"step_names": ["g-a", "g-b"], "connections": [{"source": "g-a.data", "target": "g-b.num"}]},
     "is a file"),
    ({"step_names": ["g-b", "g-boom"], "connections": [
        {"source": "g-b.b_out", "target": "g-boom.num"},
        {"source": "g-boom.b_out", "target": "g-b.num"}]}, "cycle: g-b -> g-boom -> g-b"),
    ({"step_names": ["g-a", "g-b", "g-boom"], "connections": [
        {"source": "g-a.num", "target": "g-b.num"},
        {"source": "g-boom.b_out", "target": "g-b.num"}]}, "fed by two connections"),
    ({"step_names": ["g-b", "g-boom"]}, "open output named 'b_out'"),
    ({"step_names": ["g-a", "g-b"], "connections": "a->b"}, "'connections' must be a list"),
    ({"step_names": ["g-a", "g-b"], "connections": [{"source": "g-a", "target": "g-b.num"}]},
     "step_name.output_name"),
    ({"step_names": []}, "non-empty"),
    ({"step_names": ["g-a", 5]}, "'step_names' must be a non-empty list"),
])
def test_bad_graphs_are_400s_naming_the_fault(steps, admin, body, words):
    r = admin.env_call("POST", "/pipelines", json={"pipeline_name": "bad", **body})
    error = assert_error(r, 400, "BadRequest")
    assert words in error["message"], error
    assert_error(admin.env_call("GET", "/pipelines/bad"), 404)


def test_open_inputs_of_one_name_must_agree_on_their_type(steps, admin):
    """g-b's `num` is a number, g-text's a string: one open input cannot feed both."""
    r = admin.env_call("POST", "/pipelines", json={"pipeline_name": "bad",
                                                   "step_names": ["g-boom", "g-text"]})
    error = assert_error(r, 400, "BadRequest")
    assert "num" in error["message"], error


def test_an_unknown_step_is_404(steps, admin):
    r = admin.env_call("POST", "/pipelines",
                       json={"pipeline_name": "bad", "step_names": ["g-a", "nope"]})
    assert "nope" in assert_error(r, 404, "NotFound")["message"]


def test_a_good_diamond_is_stored_with_its_open_io(steps, admin):
    body = {"pipeline_name": "fan", "step_names": ["g-a", "g-b", "g-c"], "connections": [
        {"source": "g-a.num", "target": "g-b.num"}, {"source": "g-a.data", "target": "g-b.data"},
        {"source": "g-a.data", "target": "g-c.data"}]}
    r = admin.env_call("POST", "/pipelines", json=body)
    assert r.status_code in (200, 201), r.get_data(as_text=True)
    got = admin.env_call("GET", "/pipelines/fan").get_json()
    assert [i["name"] for i in got["parameters"]["inputs"]] == ["text"]
    assert sorted(o["name"] for o in got["parameters"]["outputs"]) == ["b_out", "c_file"]
    assert got["steps"] == ["g-a", "g-b", "g-c"]
    assert_error(admin.env_call("POST", "/pipelines", json=body), 409, "Conflict")
