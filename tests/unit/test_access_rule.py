"""The access rule itself (domain/access.check): no role → 404 worded as a missing
project or environment; a lower role → 403 naming the role needed; else the role."""

from __future__ import annotations

import pytest
from shipyard_service.domain.access import Role, check, parse_role
from shipyard_service.errors import BadRequest, Forbidden, NotFound


@pytest.mark.parametrize("role", [None, *Role])
@pytest.mark.parametrize("needed", list(Role))
def test_check(role, needed):
    if role is None:
        with pytest.raises(NotFound) as caught:
            check(role, needed, "alpha", "dev")
        assert caught.value.message == "Environment 'alpha/dev' not found"
        with pytest.raises(NotFound) as caught:
            check(role, needed, "alpha")
        assert caught.value.message == "Project 'alpha' not found"
    elif role < needed:
        with pytest.raises(Forbidden) as caught:
            check(role, needed, "alpha")
        assert caught.value.additional_data == {"project_name": "alpha", "role": role.label,
                                                "needed": needed.label}
    else:
        assert check(role, needed, "alpha") is role


def test_parse_role():
    assert [parse_role(n) for n in ("viewer", "Editor", " admin ")] == list(Role)
    for bad in ("owner", "", None, 3, ["admin"]):
        with pytest.raises(BadRequest):
            parse_role(bad)
