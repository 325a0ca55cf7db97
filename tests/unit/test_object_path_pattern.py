"""The data store's documented object path pattern (docs/openapi.json) accepts exactly the
paths domain/datastore.normalize_path accepts (its byte limits aside): a request the document
allows is not refused, and one it refuses is."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shipyard_service.api.schemas.datastore import OBJECT_PATH
from shipyard_service.domain.datastore import normalize_path
from shipyard_service.errors import BadRequest

PATTERN = re.compile(OBJECT_PATH)
QUICK = settings(max_examples=200, database=None, derandomize=True,
                 suppress_health_check=list(HealthCheck))


def _accepted(path: str) -> bool:
    try:
        normalize_path(path)
    except BadRequest:
        return False
    return True


@QUICK
@given(st.from_regex(OBJECT_PATH))
def test_every_path_the_pattern_generates_is_accepted(path):
    assert _accepted(path), path


@QUICK
@given(st.text(alphabet=st.sampled_from(list("ab./\\ :C\t\n\x7fé")), max_size=8))
def test_the_pattern_and_the_domain_agree(path):
    assert bool(PATTERN.match(path)) == _accepted(path), path


def test_known_cases():
    for path in ("a", "/a/b.csv", "...", ".a", "a/..b", "C/x", " a"):
        assert PATTERN.match(path) and _accepted(path), path
    for path in ("", "  ", "a//b", "a/", "./a", "a/..", "C:/x", "a\\b", "a\nb", "a\n"):
        assert not PATTERN.match(path) and not _accepted(path), path
