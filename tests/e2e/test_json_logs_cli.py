"""``--log-format json`` through a database blip: every stderr line is one JSON object, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import Cli
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.channel import sample_episodes
from ytingest.testing.pgproxy import PgProxy

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_speakers(cli: Cli) -> None:
    """These tests are about faults, logs and the monitor, not voices (test_speaker_labels_cli.py
    runs the speaker stage end to end): without it each run is shorter."""
    cli.env["SPEAKERS"] = "false"


def _read_lines(stream: object, into: list[str]) -> threading.Thread:
    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def _wait_for(lines: list[str], event: str, proc: subprocess.Popen[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(f'"event": "{event}"' in line for line in list(lines)):
            return
        time.sleep(0.05)
    raise AssertionError(f"no {event} event before the run ended: {''.join(lines)[-3000:]}")


def test_a_database_blip_logs_json_lines_only(cli: Cli, fresh_dsn: str) -> None:
    """The database goes away for 4 s mid-run: retried, exit 0, asyncpg's noise is one JSON warning."""
    with (
        serve_in_thread(PgProxy(fresh_dsn)) as proxy,
        serve_in_thread(ChannelServer(sample_episodes()[:5])) as ch,
    ):
        ch.held = {e.id for e in ch.episodes[1:]}  # still to store when the database goes
        env = {**cli.env, "DATABASE_URL": proxy.dsn, "DB_RETRY_S": "90", "RETRY_BASE_S": "0.2"}
        argv = [
            sys.executable,
            "-m",
            "ytingest",
            "stream",
            ch.feed_url,
            "--json",
            "--log-format",
            "json",
            "--log-level",
            "info",
            "--io-workers",
            "1",
        ]
        err: list[str] = []
        out: list[str] = []
        with subprocess.Popen(
            argv, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as proc:
            readers = [_read_lines(proc.stderr, err), _read_lines(proc.stdout, out)]
            try:
                _wait_for(err, "video_stored", proc)  # the pool is open and in use: now pull the plug
                loop = proxy._server.get_loop()  # type: ignore[union-attr]
                loop.call_soon_threadsafe(proxy.take_down)
                ch.release()
                time.sleep(4)
                proxy.down = False
                returncode = proc.wait(timeout=240)
            finally:
                if proc.poll() is None:
                    proc.kill()
                for reader in readers:
                    reader.join(timeout=10)
    stderr = "".join(err)
    assert returncode == 0, stderr[-3000:]
    assert json.loads("".join(out))["done"] == 5
    events = []
    for line in stderr.splitlines():
        assert "Traceback" not in line, line
        event = json.loads(line)  # every stderr line is one JSON object
        assert isinstance(event, dict) and "event" in event and "level" in event, line
        events.append(event)
    blip = [e for e in events if e["event"] == "db_retry" or e.get("logger", "").startswith("asyncpg")]
    assert blip, "the database blip did not reach the run"
    for e in events:
        if e.get("logger", "").startswith("asyncpg"):
            assert e["level"] == "warning" and "exception" not in e, e
