"""The daemon's named counters, including counts folded in lazily from hot paths."""

from __future__ import annotations

import pytest

from bbnode.daemon.counters import Counters


def test_incr_get_and_sorted_copy() -> None:
    counters = Counters()
    counters.incr("b.two", 2)
    counters.incr("a.one")
    assert counters.get("a.one") == 1
    assert counters.get("never") == 0
    assert counters.as_dict() == {"a.one": 1, "b.two": 2}
    with pytest.raises(ValueError, match="negative delta"):
        counters.incr("a.one", -1)


def test_a_folder_is_folded_in_once_before_every_read() -> None:
    counters = Counters()
    pending = {"step.SendEnvelope": 0}
    calls: list[Counters] = []

    def fold(into: Counters) -> None:
        calls.append(into)
        for name, count in pending.items():
            if count:
                into.incr(name, count)
        pending.update(dict.fromkeys(pending, 0))

    counters.add_folder(fold)
    assert calls == []  # registering does not fold
    pending["step.SendEnvelope"] += 3  # counted by the hot path, not yet in `counters`
    assert counters.get("step.SendEnvelope") == 3
    assert calls == [counters]
    pending["step.SendEnvelope"] += 2
    assert counters.as_dict() == {"step.SendEnvelope": 5}
    assert calls == [counters] * 2
    counters.incr("other")  # a write does not fold
    assert calls == [counters] * 2
    assert counters.as_dict() == {"other": 1, "step.SendEnvelope": 5}
    assert calls == [counters] * 3  # exactly one call per read


def test_every_folder_is_folded_in_before_a_read() -> None:
    counters = Counters()
    calls: list[str] = []
    counters.add_folder(lambda into: calls.append("first"))
    counters.add_folder(lambda into: calls.append("second"))
    assert counters.get("x") == 0
    assert calls == ["first", "second"]
