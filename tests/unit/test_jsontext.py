"""The JSON the service reads from requests and forms carries finite numbers only
(jsontext.py); the UI's typed form values follow the same rule."""

from __future__ import annotations

import pytest
from shipyard_service import jsontext
from shipyard_service.errors import BadRequest
from shipyard_service.ui.wizard import typed_value


@pytest.mark.parametrize("text", ["NaN", "[1, Infinity]", '{"a": -Infinity}', "1e309",
                                  "[-1e400]", "[1" + "0" * 400 + ".5]"])
def test_numbers_json_cannot_carry_are_refused(text):
    with pytest.raises(jsontext.NonFiniteNumber):
        jsontext.loads(text)


def test_what_json_carries_reads_as_before():
    big = 2**70
    assert jsontext.loads(f'{{"a": [1, 2.5, -1e308, {big}, null, "NaN"]}}') == {
        "a": [1, 2.5, -1e308, big, None, "NaN"]}
    with pytest.raises(ValueError):
        jsontext.loads("{")


@pytest.mark.parametrize("raw, data_type", [("nan", "number"), ("inf", "number"),
                                            ("-Infinity", "number"), ('{"a": NaN}', "json"),
                                            ("[1e309]", "array")])
def test_ui_typed_values_refuse_them(raw, data_type):
    with pytest.raises(BadRequest):
        typed_value(raw, data_type, "x")
    assert typed_value("2.5", "number", "x") == 2.5
