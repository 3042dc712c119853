"""The monitor as a user meets it: `stream --metrics-port --report` and `ytingest top` against it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import Cli
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.channel import sample_episodes

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_speakers(cli: Cli) -> None:
    """These tests are about faults, logs and the monitor, not voices (test_speaker_labels_cli.py
    runs the speaker stage end to end): without it each run is shorter."""
    cli.env["SPEAKERS"] = "false"


def test_top_attaches_to_a_running_stream_and_the_report_is_written(cli: Cli) -> None:
    """`top --once` draws the live view from /status while `stream` runs; `--report` writes the timeline."""
    report = cli.home.parent / "run.html"
    with serve_in_thread(ChannelServer(sample_episodes()[:5], bandwidth=12_000)) as ch:
        args = ["stream", ch.feed_url, "--metrics-port", "0", "--report", str(report), "--log-format", "json"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "ytingest", *args],
            env=cli.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stderr is not None
        port = None
        for line in proc.stderr:
            event = json.loads(line)
            if event["event"] == "metrics_listening":
                port = event["url"].rsplit(":", 1)[1].split("/")[0]
            if port and event["event"] == "download_done":
                break
        assert port is not None
        top = subprocess.run(
            [sys.executable, "-m", "ytingest", "top", "--port", port, "--once"],
            env=cli.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        out, _ = proc.communicate(timeout=240)
    assert top.returncode == 0, top.stderr
    assert "io_q=" in top.stdout and "bottleneck:" in top.stdout
    assert proc.returncode == 0, out
    page = report.read_text()
    assert page.count("<svg") == 4 and "5 stored" in page  # the fourth: audio left and the ETA
    gone = subprocess.run(
        [sys.executable, "-m", "ytingest", "top", "--port", port, "--once"],
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gone.returncode == 2 and "no ytingest engine answers" in gone.stderr
