"""Bad input is refused before any work: exit 2, one line on stderr, no traceback, within 5 s,
no database started and no model loaded (issue 27)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Cli, CliResult

LIMIT_S = 5.0


def _refused(cli: Cli, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the CLI; assert the early refusal's shape and speed; return its one stderr line."""
    started = time.monotonic()
    r: CliResult = cli(*args, timeout=60, extra_env=env)
    took = time.monotonic() - started
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ytingest: error: "), r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert took < LIMIT_S, f"{args}: {took:.1f} s"
    assert not (cli.home / "pg").exists()  # no embedded PostgreSQL: refused before the engine
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_report_to_an_unwritable_path(cli: Cli) -> None:
    line = _refused(cli, "stream", "http://127.0.0.1:9/feed.xml", "--report", "/proc/x/r.html", "--json")
    assert "--report" in line and "/proc/x" in line


def test_serve_on_a_port_out_of_range(cli: Cli) -> None:
    assert "65535" in _refused(cli, "serve", "--port", "70000")


@pytest.mark.parametrize(
    "url",
    ["postgresql://bob:hunter2@127.0.0.1:99999/x", "postgresql://bob:hunter2@[::zz]:5432/x"],
)
def test_a_malformed_database_url(cli: Cli, url: str) -> None:
    line = _refused(cli, "status", env={"DATABASE_URL": url})
    assert "DATABASE_URL" in line and "hunter2" not in line


@pytest.mark.parametrize("url", ["ytsearch5:foo", "javascript:alert(1)", "notaurl"])
def test_a_channel_url_that_is_no_http_url(cli: Cli, url: str) -> None:
    assert "cannot list" in _refused(cli, "stream", url)


def test_export_to_a_bad_path(cli: Cli) -> None:
    assert "--output" in _refused(cli, "export", "some-video", "-o", "/proc/x/y")


def test_a_metrics_port_in_use(cli: Cli, taken_port: int) -> None:
    line = _refused(cli, "stream", "http://127.0.0.1:9/feed.xml", "--metrics-port", str(taken_port))
    assert "--metrics-port" in line and str(taken_port) in line


def test_serve_on_a_port_in_use(cli: Cli, taken_port: int) -> None:
    assert "in use" in _refused(cli, "serve", "--port", str(taken_port))
