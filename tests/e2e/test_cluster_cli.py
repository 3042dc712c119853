"""The cluster through the real CLI: ``ytingest db start``, ``enqueue`` and several ``ytingest worker``
processes on one PostgreSQL, real yt-dlp against the local channel, the real models.

A worker is killed with SIGKILL mid-run, a "poison" video kills every worker that takes it (the
test plays the poison: it SIGKILLs whichever worker holds that video), and SIGTERM drains one.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import Cli, cli_in, cli_rows
from tests.e2e.test_verdicts_cli import sparse_episode
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.channel import Episode, sample_episodes

pytestmark = pytest.mark.slow
CAP = 2  # DOWNLOAD_CONCURRENCY_GLOBAL in these tests
WORKER_ENV = {
    "SPEAKERS": "false",
    "WORKER_CLAIMS": "2",
    "WORKER_LEASE_S": "8",  # heartbeats every 4 s: a loaded 2-core machine never misses one
    "DOWNLOAD_CONCURRENCY_GLOBAL": str(CAP),
    "RETRY_BASE_S": "0.2",
    "RETRY_MAX_S": "1",
}


def twelve_episodes() -> list[Episode]:
    """The six sample episodes, and the same six again under other ids (a 12-episode channel)."""
    first = sample_episodes()
    again = [replace(e, id=f"{e.id}-again", title=f"{e.title} (again)") for e in first]
    return first + again


def query(dsn: str, sql: str, *args: object) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [dict(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


class Cluster:
    """A ``db start`` server in the CLI's home, and worker processes on it."""

    def __init__(self, cli: Cli, tmp: Path) -> None:
        self.cli, self.tmp = cli, tmp
        started = cli("db", "start", extra_env={"DATABASE_URL": ""})
        assert started.returncode == 0, started.stderr[-2000:]
        self.dsn = started.stdout.strip()
        self.env = {**cli.env, **WORKER_ENV, "DATABASE_URL": self.dsn}
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ytingest", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def worker(self, name: str, *extra: str) -> subprocess.Popen[str]:
        with (self.tmp / f"{name}.err").open("w") as err:  # the child keeps its own copy
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ytingest",
                    "worker",
                    "--name",
                    name,
                    "--json",
                    "--log-format",
                    "json",
                    *extra,
                ],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        self.procs[name] = proc
        return proc

    def events(self, name: str) -> list[dict[str, Any]]:
        lines = (self.tmp / f"{name}.err").read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def sql(self, sql: str, *args: object) -> list[dict[str, Any]]:
        return query(self.dsn, sql, *args)

    def open_claims(self, worker: str) -> set[str]:
        rows = self.sql("SELECT video_id FROM claims WHERE worker = $1 AND ended_at IS NULL", worker)
        return {r["video_id"] for r in rows}

    def wait_until(self, what: Callable[[], bool], timeout: float = 240, every: float = 0.3) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            if time.monotonic() > deadline:
                logs = {n: (self.tmp / f"{n}.err").read_text()[-1500:] for n in self.procs}
                raise AssertionError(f"timed out waiting; worker logs: {logs}")
            time.sleep(every)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self.cli("db", "stop", extra_env={"DATABASE_URL": ""})


@contextmanager
def cluster(cli: Cli, tmp: Path) -> Iterator[Cluster]:
    c = Cluster(cli, tmp)
    try:
        yield c
    finally:
        c.stop()


def transcribing_only(events: list[dict[str, Any]]) -> bool:
    """A worker that has begun transcribing and has no download in progress."""
    count = {
        k: sum(e["event"] == k for e in events)
        for k in ("download_start", "download_done", "transcribe_start")
    }
    return count["transcribe_start"] > 0 and count["download_start"] == count["download_done"]


def stored_rows(dsn: str) -> set[tuple[str, int, str]]:
    rows = query(dsn, "SELECT video_id, idx, text FROM segments")
    return {(r["video_id"], r["idx"], r["text"]) for r in rows}


def test_three_workers_one_killed_store_every_episode_once(tmp_path: Path, cli: Cli) -> None:
    """12 episodes, 3 workers, one SIGKILLed holding claims: every episode stored once, equal to a
    single-process ``stream``; the dead worker's videos finished by the others, attempts counted;
    never more than CAP downloads at once across the workers; enqueue is idempotent and works while
    the workers run."""
    episodes = twelve_episodes()
    with serve_in_thread(ChannelServer(episodes, bandwidth=400_000)) as ch, cluster(cli, tmp_path) as c:
        first = c.run("enqueue", ch.feed_url, "--limit", "6", "--json")
        assert first.returncode == 0, first.stderr[-2000:]
        assert json.loads(first.stdout) == {"queued": 6, "skipped": 0}
        workers = [c.worker(n, "--until-empty") for n in ("w1", "w2", "w3")]
        c.wait_until(lambda: bool(c.open_claims("w1")))
        more = c.run("enqueue", ch.feed_url, "--json")  # while the workers run: the other six
        assert more.returncode == 0, more.stderr[-2000:]
        assert json.loads(more.stdout)["queued"] == 6
        # killed mid-run holding claims, while it transcribes: no yt-dlp child of its own is left
        # downloading (a SIGKILLed worker's children outlive it, outside the cap: see the README)
        c.wait_until(lambda: transcribing_only(c.events("w1")))
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        held_by_dead = c.open_claims("w1")
        assert held_by_dead, "w1 held no claim when it was killed"
        again = c.run("enqueue", ch.feed_url, "--json")
        assert json.loads(again.stdout)["queued"] == 0  # nothing queued twice
        for w in workers[1:]:
            out, _ = w.communicate(timeout=420)
            assert w.returncode == 0, (tmp_path / "w2.err").read_text()[-3000:]
            assert json.loads(out)["failed"] == 0
        assert ch.peak_downloads <= CAP, ch.peak_downloads
        assert ch.peak_downloads == CAP  # the cap was what held them back (3 workers x 2 claims)

        videos = {r["id"]: r for r in c.sql("SELECT id, status, attempts, segments FROM videos")}
        assert {v: r["status"] for v, r in videos.items()} == {e.id: "done" for e in episodes}
        counts = c.sql("SELECT video_id, count(*) AS n, count(DISTINCT idx) AS idx FROM segments GROUP BY 1")
        assert all(r["n"] == r["idx"] == videos[r["video_id"]]["segments"] for r in counts)
        claims = c.sql("SELECT video_id, worker, outcome FROM claims ORDER BY id")
        for video in held_by_dead:  # finished by another worker, and counted as a second attempt
            ends = [(r["worker"], r["outcome"]) for r in claims if r["video_id"] == video]
            assert ends[0] == ("w1", "died") and ends[-1][1] == "stored" and ends[-1][0] != "w1", ends
            assert videos[video]["attempts"] == 2
        assert all(videos[e.id]["attempts"] == 1 for e in episodes if e.id not in held_by_dead)
        assert not c.sql("SELECT id FROM pgqueuer")  # the queue is empty
        cluster_rows = stored_rows(c.dsn)

        # the single-process reference: the feed's first six (the originals; each copy is the same
        # audio, and the transcript is a function of the audio: test_determinism.py), so the copies
        # must hold the same rows under their own ids; half the model's work of streaming all twelve
        alone = cli_in(tmp_path / "single")  # its own home: `db start`'s server is not its default
        single = alone(
            "stream", ch.feed_url, "--limit", "6", "--json", extra_env={"SPEAKERS": "false"}, timeout=600
        )
        assert single.returncode == 0, single.stderr[-2000:]
        assert json.loads(single.stdout)["done"] == len(episodes) // 2
    single_rows = cli_rows(alone, "SELECT video_id, idx, text FROM segments")
    originals = {e.id for e in episodes[: len(episodes) // 2]}
    assert {r["video_id"] for r in single_rows} == originals
    expected = {
        (f"{r['video_id']}{suffix}", r["idx"], r["text"]) for r in single_rows for suffix in ("", "-again")
    }
    assert cluster_rows == expected


def test_a_poison_video_fails_after_n_worker_deaths_and_the_queue_goes_on(tmp_path: Path, cli: Cli) -> None:
    """The first episode kills every worker that takes it (played by the test). After
    WORKER_MAX_DEATHS=2 deaths the next worker fails it with the reason instead of dying; the
    videos enqueued meanwhile are stored."""
    episodes = sample_episodes()[:4]
    poison = episodes[0].id  # the feed's first: ``--limit 1`` queues it alone
    with serve_in_thread(ChannelServer(episodes)) as ch, cluster(cli, tmp_path) as c:
        c.env["WORKER_MAX_DEATHS"] = "2"
        assert c.run("enqueue", ch.feed_url, "--limit", "1").returncode == 0
        for n in ("p1", "p2", "p3"):
            c.worker(n)  # no --until-empty: they wait for work
        killed: list[str] = []

        def kill_the_holder() -> bool:
            holders = c.sql("SELECT worker FROM claims WHERE video_id = $1 AND ended_at IS NULL", poison)
            for h in holders:
                if h["worker"] not in killed:
                    c.procs[h["worker"]].send_signal(signal.SIGKILL)
                    c.procs[h["worker"]].wait()
                    killed.append(h["worker"])
            return bool(holders)

        c.wait_until(kill_the_holder)
        assert c.run("enqueue", ch.feed_url).returncode == 0  # the other three, while the poison waits
        c.wait_until(lambda: kill_the_holder() and len(killed) == 2, timeout=120)
        c.wait_until(lambda: c.sql("SELECT 1 FROM videos WHERE status = 'pending'") == [], timeout=300)
        survivor = next(n for n in ("p1", "p2", "p3") if n not in killed)
        c.procs[survivor].send_signal(signal.SIGTERM)
        out, _ = c.procs[survivor].communicate(timeout=120)
        assert c.procs[survivor].returncode == 1  # it stored the others and failed the poison
        summary = json.loads(out)
        assert [f["video_id"] for f in summary["failures"]] == [poison]

        status = {r["id"]: r for r in c.sql("SELECT id, status, permanent, error, attempts FROM videos")}
        assert status[poison]["status"] == "failed" and status[poison]["permanent"]
        assert "2 workers died while holding this video" in status[poison]["error"]
        assert status[poison]["attempts"] == 2  # two workers began it (the third refused it)
        assert all(status[e.id]["status"] == "done" for e in episodes[1:]), status
        deaths = c.sql(
            "SELECT worker FROM claims WHERE video_id = $1 AND outcome = 'died' ORDER BY id", poison
        )
        assert [d["worker"] for d in deaths] == killed
        assert not c.sql("SELECT id FROM pgqueuer")
        reasons = json.loads(c.run("status", "--json").stdout)["failures"]
        assert any(f["video_id"] == poison and "workers died" in f["reason"] for f in reasons)


def test_sigterm_drains_a_worker_and_loses_no_claim(tmp_path: Path, cli: Cli) -> None:
    """SIGTERM mid-run: the worker takes no new claim, finishes or releases what it holds, exits 0;
    its released videos are back in the queue at once, and another worker stores them. A worker
    claims the next video once a window of the one before is in its model (``workers/room.py``),
    so it holds two here: one in the model, one still downloading (3-4 s at this bandwidth)."""
    episodes = sample_episodes()[:5]
    with serve_in_thread(ChannelServer(episodes, bandwidth=20_000)) as ch, cluster(cli, tmp_path) as c:
        c.env["WORKER_CLAIMS"] = "3"
        assert c.run("enqueue", ch.feed_url).returncode == 0
        w = c.worker("t1")
        c.wait_until(lambda: len(c.open_claims("t1")) >= 2)
        t0 = time.monotonic()
        w.send_signal(signal.SIGTERM)
        out, _ = w.communicate(timeout=180)
        drained_in = time.monotonic() - t0
        assert w.returncode == 0, (tmp_path / "t1.err").read_text()[-3000:]
        assert drained_in < 60, drained_in  # the short downloads in flight end, the rest goes back
        assert json.loads(out)["failed"] == 0
        ends = c.sql("SELECT video_id, outcome FROM claims WHERE worker = 't1'")
        assert ends and all(r["outcome"] in ("stored", "released") for r in ends), ends
        done = {r["id"] for r in c.sql("SELECT id FROM videos WHERE status = 'done'")}
        queued = {r["dedupe_key"] for r in c.sql("SELECT dedupe_key FROM pgqueuer WHERE status = 'queued'")}
        assert done | queued == {e.id for e in episodes} and not done & queued  # nothing lost
        released = {r["video_id"] for r in ends if r["outcome"] == "released"}
        assert released, ends  # the one still downloading went back
        assert released <= queued  # back in the queue at once, not after a lease
        assert c.sql("SELECT state FROM workers WHERE name = 't1'") == [{"state": "stopped"}]
        after = c.worker("t2", "--until-empty")
        after.communicate(timeout=300)
        assert after.returncode == 0
        assert len(c.sql("SELECT id FROM videos WHERE status = 'done'")) == len(episodes)


def test_workers_lists_the_cluster_and_db_url_needs_a_server(tmp_path: Path, cli: Cli) -> None:
    """``workers --json`` after a run; ``db url`` with no server is a one-line error and exit 2."""
    missing = cli("db", "url", extra_env={"DATABASE_URL": ""})
    assert missing.returncode == 2 and "ytingest db start" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    with serve_in_thread(ChannelServer(sample_episodes()[:1])) as ch, cluster(cli, tmp_path) as c:
        assert c.run("db", "url").stdout.strip() == c.dsn  # url prints what start printed
        assert c.run("enqueue", ch.feed_url).returncode == 0
        w = c.worker("solo", "--until-empty", "--gpu", "0")
        w.communicate(timeout=300)
        assert w.returncode == 0
        listed = json.loads(c.run("workers", "--json").stdout)
        row = next(r for r in listed["workers"] if r["name"] == "solo")
        assert (row["state"], row["done"], row["gpu"], row["pid"]) == ("stopped", 1, "0", w.pid)
        assert isinstance(row["videos_per_hour"], float) and row["videos_per_hour"] > 0
        assert listed["cluster"]["queue"] == {"queued": 0, "picked": 0}
        password = c.dsn.split(":")[2].split("@")[0]
        assert password not in c.run("workers").stdout + (tmp_path / "solo.err").read_text()
        assert not (cli.home / "workers" / "solo" / "audio").exists() or not any(
            (cli.home / "workers" / "solo" / "audio").iterdir()
        )
    assert os.path.isdir(cli.home / "pg-server")


def most_held_at_once(claims: list[dict[str, Any]], worker: str) -> int:
    """The most claims ``worker`` had open at the same time (from the ``claims`` table's times)."""
    marks = sorted(
        (t, step)
        for r in claims
        if r["worker"] == worker
        for t, step in ((r["started_at"], 1), (r["ended_at"], -1))
        if t is not None
    )
    held = most = 0
    for _t, step in marks:  # at equal times an end sorts first (-1 < 1)
        held += step
        most = max(most, held)
    return most


def test_two_workers_on_four_long_episodes_each_store_some(tmp_path: Path, cli: Cli) -> None:
    """Four 4-minute episodes of real speech, two workers started together with the default claims
    (WORKER_CLAIMS unset): each stores at least one, and neither held more than the video in its
    model plus the next one at any time (no fixed 8: the first worker no longer takes all four)."""
    base = sparse_episode(tmp_path, 4)
    episodes = [replace(base, id=f"four-{i}", title=f"four minutes, number {i}") for i in range(4)]
    with serve_in_thread(ChannelServer(episodes)) as ch, cluster(cli, tmp_path) as c:
        del c.env["WORKER_CLAIMS"]
        queued = c.run("enqueue", ch.feed_url, "--json")
        assert json.loads(queued.stdout) == {"queued": 4, "skipped": 0}, queued.stderr[-2000:]
        workers = {n: c.worker(n, "--until-empty") for n in ("a", "b")}
        for name, proc in workers.items():
            out, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, (tmp_path / f"{name}.err").read_text()[-3000:]
            assert json.loads(out)["failed"] == 0
        claims = c.sql("SELECT video_id, worker, outcome, started_at, ended_at FROM claims")
        stored = {
            n: {r["video_id"] for r in claims if r["worker"] == n and r["outcome"] == "stored"}
            for n in workers
        }
        assert stored["a"] and stored["b"], claims
        assert stored["a"] | stored["b"] == {e.id for e in episodes} and not stored["a"] & stored["b"]
        assert max(most_held_at_once(claims, n) for n in workers) <= 2, claims
        counts = c.sql(
            "SELECT video_id, count(*) AS n, count(DISTINCT idx) AS idx, max(idx) AS top"
            " FROM segments GROUP BY 1"
        )
        assert len(counts) == 4 and all(r["n"] == r["idx"] == r["top"] + 1 for r in counts), counts
