"""Rate limits through the real CLI and real yt-dlp: a long 429 burst, a bot check that persists."""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, CliResult, cli_rows
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.channel import Episode, sample_episodes

pytestmark = pytest.mark.slow
FAST = {"RETRY_BASE_S": "0.2", "RETRY_MAX_S": "1", "RATE_LIMIT_BASE_S": "0.2", "SPEAKERS": "false"}
# extractor/youtube/_video.py _real_extract: YouTube's reason, then its _youtube_login_hint
# (extractor/common.py _login_hint); issues #10128, #16870
BOT_CHECK = (
    "ERROR: [youtube] tpUr8xVxj-w: Sign in to confirm you’re not a bot. Use --cookies-from-browser or "
    "--cookies for the authentication. See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-"
    "cookies-to-yt-dlp  for how to manually pass cookies"
)


def six_short_episodes() -> list[Episode]:
    """The five short samples and a second copy of the first, under its own id."""
    short = sample_episodes()[:5]
    return [*short, replace(short[0], id="ep07-vectors-again")]


def events(r: CliResult) -> list[dict[str, Any]]:
    """The JSON log events on stderr (the halt's advice line is plain text)."""
    return [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]


def run_in_thread(
    cli: Cli, *args: str, extra_env: dict[str, str]
) -> tuple[threading.Thread, list[CliResult]]:
    result: list[CliResult] = []
    thread = threading.Thread(target=lambda: result.append(cli(*args, extra_env=extra_env)))
    thread.start()
    return thread, result


def test_a_20_second_429_burst_with_6_in_flight_fails_nothing_and_spends_no_attempts(cli: Cli) -> None:
    """Every audio request answers 429 for 20 s from the first one (Retry-After: 1), six downloads
    in flight: all six are stored, none failed, each video's ledger attempts stay at 1 (a
    rate-limited try is not an attempt), and the in-flight 429s of one pause are echoes of it."""
    with serve_in_thread(ChannelServer(six_short_episodes(), retry_after=1)) as ch:
        ch.throttle_until = math.inf  # until the first audio request starts the 20 s
        thread, result = run_in_thread(
            cli, "stream", ch.feed_url, "--json", "--io-workers", "6", extra_env=FAST
        )
        deadline = time.monotonic() + 120
        while not ch.log and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.01)
        assert ch.log, "no audio request"
        ch.throttle_until = ch.log[0][0] + 20.0
        thread.join(timeout=240)
        log = list(ch.log)
    r = result[0]
    assert r.returncode == 0, r.stderr[-3000:]
    assert (r.json()["done"], r.json()["failed"]) == (6, 0)
    refused = [(t, ep) for t, ep, status in log if status == 429]
    assert len({ep for _, ep in refused}) == 6  # all six were in flight when it began
    # the downloads kept trying through the 20 s, not giving up early: a refusal in its last 6 s (a
    # try comes each Retry-After pause plus a yt-dlp start-up; 18.7 s after the first was seen)
    assert refused[-1][0] >= refused[0][0] + 14.0
    assert all(t >= refused[0][0] + 20.0 for t, _, status in log if status == 200)  # none got through early
    attempts = {row["id"]: row["attempts"] for row in cli_rows(cli, "SELECT id, attempts FROM videos")}
    assert attempts == {ep.id: 1 for ep in six_short_episodes()}, attempts
    limited = [e for e in r.events() if e["event"] == "rate_limited"]
    assert len(limited) == len(refused) and any(e["echo"] for e in limited)
    assert not [e for e in r.events() if e["event"] in ("video_failed", "format_fallback")]


def test_a_bot_check_that_persists_stops_the_run_with_advice_and_leaves_the_rest_pending(
    cli: Cli, tmp_path: Path
) -> None:
    """A yt-dlp whose every download meets YouTube's bot check: after BOT_CHECK_LIMIT (3) in a row,
    a pause between each, the run takes no new video, prints one line of advice (cookies from a
    private window, a residential address, a PO-token provider) and exits 1; nothing failed, every
    video stays pending for the next run."""
    fake = tmp_path / "yt-dlp"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "if '--flat-playlist' in sys.argv:  # the listing is real yt-dlp's\n"
        "    os.execv(sys.executable, [sys.executable, '-m', 'yt_dlp', *sys.argv[1:]])\n"
        f"sys.stderr.write({BOT_CHECK!r} + '\\n')\n"
        "sys.exit(1)\n"
    )
    fake.chmod(0o755)
    env = {**FAST, "YTDLP_PATH": str(fake)}
    with serve_in_thread(ChannelServer(six_short_episodes())) as ch:
        r = cli("stream", ch.feed_url, "--json", "--io-workers", "2", extra_env=env)
    assert r.returncode == 1, r.stderr[-3000:]
    advice = [line for line in r.stderr.splitlines() if line.startswith("ytingest: stopped:")]
    assert len(advice) == 1, r.stderr[-3000:]
    for words in ("private browser window", "residential address", "PO-token provider"):
        assert words in advice[0]
    summary = r.json()
    assert summary["failed"] == 0 and summary["done"] == 0 and summary["halted"]
    assert cli("status", "--json").json()["videos"] == {"done": 0, "failed": 0, "pending": 6}
    checks = [e["bot_checks"] for e in events(r) if e["event"] == "rate_limited" and not e["echo"]]
    assert checks == [1, 2, 3]
