"""Secrets never reach the logs; JSON logs are one event per line."""

import json

import pytest
import structlog

from ytingest.logs import configure_logging, redact


def test_redact_masks_url_and_keyword_passwords() -> None:
    """Passwords in URLs and key=value DSNs are masked; the rest stays readable."""
    assert redact("postgresql://bob:s3cr3t@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert "s3cr3t" not in redact("host=db password=s3cr3t user=bob")
    assert redact("nothing secret here") == "nothing secret here"


def test_json_log_lines_redact_secret_fields(capsys: pytest.CaptureFixture[str]) -> None:
    """A logged DSN or password field is masked, and each event is one JSON line."""
    configure_logging("json")
    log = structlog.get_logger("ytingest")
    log.info("connecting", database_url="postgresql://u:hunter2@h/db", note="at postgresql://u:hunter2@h/db")
    log.info("multi", text="line one\nline two")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    events = [json.loads(line) for line in lines]
    assert "hunter2" not in capsys.readouterr().err + "".join(lines)
    assert events[0]["database_url"] == "***"
    assert events[1]["text"] == "line one\nline two"
