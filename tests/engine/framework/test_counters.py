"""Counters: monotonic named counts and restore."""

from __future__ import annotations

import pytest

from bbnode.engine.framework import Counters, FrameworkStateError, FrameworkUsageError


def test_incr_get_as_dict() -> None:
    c = Counters()
    assert c.get("x") == 0
    assert c.incr("x") == 1
    assert c.incr("x", 4) == 5
    assert c.incr("a", 0) == 0
    assert c.as_dict() == {"a": 0, "x": 5}
    assert list(c.as_dict()) == ["a", "x"]
    assert len(c) == 2
    assert "x" in c
    snapshot = c.as_dict()
    c.incr("x")
    assert snapshot["x"] == 5  # a copy


@pytest.mark.parametrize(
    ("name", "delta", "match"),
    [
        ("", 1, "non-empty str"),
        (3, 1, "non-empty str"),
        ("x", -1, "delta must be an int >= 0"),
        ("x", 1.0, "delta must be an int >= 0"),
        ("x", True, "delta must be an int >= 0"),
    ],
)
def test_incr_rejects_bad_arguments(name: object, delta: object, match: str) -> None:
    with pytest.raises(FrameworkUsageError, match=match):
        Counters().incr(name, delta)  # type: ignore[arg-type]


def test_restore_replaces() -> None:
    c = Counters()
    c.incr("old")
    c.restore_state({"b": 2, "a": 1})
    assert c.export_state() == {"a": 1, "b": 2}
    assert c.get("old") == 0


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"a": -1}, r"counters\['a'\]: must be >= 0"),
        ({"a": "1"}, "expected an int"),
        ({1: 1}, "counters key: expected a str"),
        ([("a", 1)], "expected a map"),
    ],
)
def test_restore_rejects_bad_state(state: object, match: str) -> None:
    c = Counters()
    c.incr("keep")
    with pytest.raises(FrameworkStateError, match=match):
        c.restore_state(state)  # type: ignore[arg-type]
    assert c.as_dict() == {"keep": 1}
