"""Resuming inside a video through the real CLI: kill -9 a run part-way through a 20-minute episode
of real speech, run the same command again, and the model does only what was left.

The kill is timed by the run's own ``window_checkpointed`` events (each logged once its window is
committed to the database), not by sleeping: it lands just after the window that takes the run
past 55% of the episode is kept. Windows are 120 s here (DECODE_WINDOW_S), so 20 minutes is
about ten of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import Cli, cli_rows
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.long_episodes import default_cache_dir, long_episode

pytestmark = pytest.mark.slow

MINUTES = 20
WINDOW_S = 120.0
KILL_AT = 0.55  # of the episode, at least, kept before the kill


def _kill_once_kept(proc: subprocess.Popen[str], video_id: str, seconds: float, timeout: float) -> float:
    """Read the run's JSON log until its checkpointed windows add up to ``seconds`` of the video
    (each logged once committed, in order: one model worker), then SIGKILL it; returns the sum."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    kept = 0.0
    for line in proc.stderr:
        event = json.loads(line)
        if event["event"] == "window_checkpointed" and event.get("video_id") == video_id:
            kept += float(event["seconds"])
            if kept >= seconds:
                proc.kill()
                return kept
        assert time.monotonic() < deadline, "the run did not checkpoint enough in time"
    raise AssertionError(f"the run ended before it was killed (exit {proc.wait()})")


def _kept_windows(cli: Cli, video_id: str) -> list[dict[str, object]]:
    return cli_rows(
        cli,
        "SELECT window_index, seconds, segments FROM checkpoints"
        f" WHERE video_id = '{video_id}' ORDER BY window_index",
    )


def test_kill_9_past_half_a_video_then_the_rerun_transcribes_only_what_was_left(cli: Cli) -> None:
    """SIGKILL once >= 55% of a 20-minute episode is checkpointed; the re-run transcribes at most
    what was left plus one window, the rows are contiguous, the kept windows' text unchanged."""
    episode = long_episode(MINUTES, default_cache_dir())
    cli.env.update({"SPEAKERS": "false", "DECODE_WINDOW_S": str(WINDOW_S)})
    with serve_in_thread(ChannelServer(episodes=[episode])) as channel:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ytingest", "stream", channel.feed_url, "--log-format", "json"],
            env=cli.env,
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _kill_once_kept(proc, episode.id, KILL_AT * episode.duration, timeout=600)
        finally:
            proc.kill()
            proc.communicate(timeout=30)
        kept = _kept_windows(cli, episode.id)
        assert [w["window_index"] for w in kept] == list(range(len(kept)))
        kept_s = sum(float(str(w["seconds"])) for w in kept)
        assert kept_s >= KILL_AT * episode.duration
        assert kept_s <= episode.duration - WINDOW_S, "killed once all was kept: nothing left to resume"
        again = cli("stream", channel.feed_url, "--json", timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = again.json()
    left = episode.duration - kept_s
    done_s = summary["audio_seconds_transcribed"]
    print(
        f"kept {len(kept)} windows ({kept_s:.0f} s); the re-run transcribed {done_s} s of {left:.0f} s left"
    )
    assert summary["done"] == 1 and summary["failed"] == 0
    assert left - 1 <= done_s <= left + WINDOW_S
    assert summary["audio_seconds"] == pytest.approx(episode.duration, abs=1.0)

    rows = cli_rows(
        cli, f"SELECT idx, start_s, end_s, text FROM segments WHERE video_id = '{episode.id}' ORDER BY idx"
    )
    assert [r["idx"] for r in rows] == list(range(len(rows)))
    starts = [r["start_s"] for r in rows]
    assert starts == sorted(starts) and rows[-1]["end_s"] > episode.duration - 60
    kept_texts = [s["text"] for w in kept for s in json.loads(str(w["segments"]))]
    assert [r["text"] for r in rows[: len(kept_texts)]] == kept_texts  # the finished windows' text
    assert all(r["start_s"] >= kept_s - 1 for r in rows[len(kept_texts) :])  # then what was left
    assert _kept_windows(cli, episode.id) == []  # forgotten once the video is stored
