"""An hour-long video as a user streams it: `ytingest stream` on a channel of one 60-minute
episode of real speech (AAC in .m4a, as YouTube serves it).

While it runs the test samples the resident memory of the CLI's process tree (the engine, its
decoder child and yt-dlp; not the PostgreSQL server) and polls ``/status``. It checks that
memory stays bounded (a peak, and no growth from the first third of the hour to the last), that
progress inside the video rises, and that the stored segments cover the whole hour in order.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

import psutil
import pytest

from tests.conftest import Cli
from ytingest.testing import ChannelServer
from ytingest.testing.channel import serve_in_thread
from ytingest.testing.long_episodes import default_cache_dir, long_episode

pytestmark = pytest.mark.slow

MINUTES = int(os.environ.get("YTINGEST_LONG_MINUTES", "60"))
# Measured here (2 cores, tiny.en), the tree's peak: 1.9 GB when the speaker work ran inside
# the model's thread; 2.0-2.2 GB once speakers became a stage of their own (windows wait for it
# with their audio; 2202 MiB in one CI run), 1.7-1.9 GB since the decoder child maps its large
# blocks (ytingest/malloc.py). The engine swings by ~450 MB with each ASR batch (8 chunks of
# tiny.en's encoder attention), so one peak is noisy. Before windows, the whole file was decoded
# at once: 2.2 GB at 30 minutes (issue 11), and this hour would add ~230 MB of samples in each of
# the two processes plus its features on top. The bound sits between the two; what shows that
# memory does not grow with the video's length is GROWTH_BOUND.
PEAK_RSS_BOUND = 2_300 * 2**20
# the median RSS over the last third of the time the video is in the model, against the first third
# (the engine's own creep, ~100 MiB over the hour, is what ``malloc.trim_periodically`` hands back;
# measured +93 and +134 MiB without it, -17 with it)
GROWTH_BOUND = 100 * 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Watch:
    """Samples the process tree's RSS and ``/status`` until stopped."""

    def __init__(self, pid: int, status_url: str) -> None:
        self.pid, self.url = pid, status_url
        self.peak = 0
        self.samples: list[tuple[float, int]] = []  # (monotonic time, RSS of the tree)
        self.in_model_since: float | None = None
        self._cmdline: list[str] = []  # first /status that shows the video in the model
        self.progress: list[tuple[float, float]] = []  # (done_s, fraction) of the video in the model
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _rss(self) -> int:
        try:
            root = psutil.Process(self.pid)
            self._cmdline = self._cmdline or root.cmdline()
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for p in procs:
            try:
                # not PostgreSQL, nor a child forked but not yet exec'd (its pages are the engine's)
                if "postgres" not in p.name() and (p is root or p.cmdline() != self._cmdline):
                    total += p.memory_info().rss
            except psutil.Error:
                continue
        return total

    def growth(self) -> tuple[int, int]:
        """Median RSS over the first and the last third of the time the video was in the model."""
        assert self.in_model_since is not None, "/status never showed the video in the model"
        running = [rss for t, rss in self.samples if t >= self.in_model_since and rss > 0]
        third = len(running) // 3
        assert third >= 10, f"only {len(running)} samples while the video was in the model"
        return int(statistics.median(running[:third])), int(statistics.median(running[-third:]))

    def _status(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as resp:
                doc: dict[str, Any] = json.load(resp)
        except OSError:
            return
        snap = doc.get("snapshot") or {}
        for v in snap.get("in_model", []):
            if v.get("fraction") is not None:
                self.progress.append((v["done_s"], v["fraction"]))
                self.in_model_since = self.in_model_since or time.monotonic()

    def _run(self) -> None:
        last_status = 0.0
        while not self._stop.is_set():
            rss = self._rss()
            self.peak = max(self.peak, rss)
            self.samples.append((time.monotonic(), rss))
            if time.monotonic() - last_status > 1.0:
                self._status()
                last_status = time.monotonic()
            self._stop.wait(0.2)


def test_an_hour_of_speech_in_bounded_memory_with_progress(cli: Cli) -> None:
    episode = long_episode(MINUTES, default_cache_dir())  # made once per machine (~4 s), as the others
    port = _free_port()
    with serve_in_thread(ChannelServer(episodes=[episode])) as channel:
        env = {**cli.env, "METRICS_PORT": str(port), "MONITOR_INTERVAL_S": "0.5"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "ytingest", "stream", channel.feed_url, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        with Watch(proc.pid, f"http://127.0.0.1:{port}/status") as watch:
            out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-2000:]
    summary = json.loads(out)
    assert summary["done"] == 1 and summary["failed"] == 0
    print(f"peak RSS {watch.peak / 2**20:.0f} MiB; {len(watch.progress)} progress samples")
    assert watch.peak < PEAK_RSS_BOUND, f"peak RSS {watch.peak / 2**20:.0f} MiB"
    first, last = watch.growth()
    print(f"median RSS {first / 2**20:.0f} MiB (first third) -> {last / 2**20:.0f} MiB (last third)")
    assert last < first + GROWTH_BOUND, "memory grew with the video's length"

    fractions = [f for _, f in watch.progress]
    assert fractions == sorted(fractions), "progress went backwards"
    assert len(set(fractions)) >= 5 and fractions[0] < 0.5 < fractions[-1]

    exported = cli("export", episode.id, "--format", "json")
    assert exported.returncode == 0, exported.stderr
    rows = exported.json()
    starts = [r["start"] for r in rows]
    assert starts == sorted(starts)
    assert [r["idx"] for r in rows] == list(range(len(rows)))
    assert rows[0]["start"] < 60 and rows[-1]["end"] > episode.duration - 60
    # A lost window would leave a hole of minutes. tiny.en itself sometimes writes nothing for one
    # 30 s chunk of the real meeting recordings (a hole of ~32 s was seen), so holes under a
    # minute are the model's, not the windows'.
    gaps = sorted((b["start"] - a["end"], a["end"]) for a, b in zip(rows, rows[1:], strict=False))
    print(f"largest holes (s, at): {[(round(g), round(t)) for g, t in gaps[-3:]]}")
    assert gaps[-1][0] < 60, f"a hole of {gaps[-1][0]:.0f} s at {gaps[-1][1]:.0f} s"
    for t0 in range(0, int(episode.duration) - 300, 300):  # every 5 minutes of the hour has text
        assert sum(t0 <= r["start"] < t0 + 300 for r in rows) >= 20, f"little text at {t0} s"
