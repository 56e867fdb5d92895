import io
import json

import pytest
import structlog

from bbnode.ids import PeerId
from bbnode.logs import configure_logging, get_logger


def test_json_lines_carry_event_and_context() -> None:
    out = io.StringIO()
    configure_logging("info", "auto", stream=out)  # StringIO is not a TTY -> JSON
    peer = PeerId.from_u64(1)
    get_logger("test", peer=peer).info("peer_up", reason="reply")
    get_logger("test").debug("hidden")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["event"] == "peer_up"
    assert entry["peer"] == str(peer)
    assert entry["reason"] == "reply"
    assert entry["component"] == "test"
    assert entry["level"] == "info"
    structlog.reset_defaults()


def test_console_format() -> None:
    out = io.StringIO()
    configure_logging("debug", "console", stream=out)
    get_logger("test").debug("hello", address="/ip4/1.2.3.4")
    assert "hello" in out.getvalue()
    assert "address=/ip4/1.2.3.4" in out.getvalue()
    structlog.reset_defaults()


def test_bad_level_and_format_are_named() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        configure_logging("loud")
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        configure_logging("info", "xml")
