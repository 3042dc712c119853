"""The cluster's hooks in the pipeline (fakes for the engine's own logic): how a video leaves a
run (``RunContext.settle``), the download stage under a global gate, and the cluster line."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from anyio import CapacityLimiter
from pgqueuer.errors import RetryRequested
from pgqueuer.models import Job

from tests.unit.test_retry_policy import Scripted
from ytingest.cli.args import settings_from
from ytingest.config import Settings
from ytingest.db.database import Database
from ytingest.db.jobs import payload_of
from ytingest.db.workers import ClaimVerdict
from ytingest.errors import ConfigError, RateLimitedError, StoreError
from ytingest.items import VideoRef
from ytingest.monitor.dashboard import cluster_line
from ytingest.pipeline.context import RunContext
from ytingest.stages.description import PIPELINE, metrics_for
from ytingest.stages.download import DownloadPolicy, _download_with_retries
from ytingest.stages.pause import SharedBackoff
from ytingest.testing.fakes import MemoryStore
from ytingest.workers.claims import ClaimFeed
from ytingest.workers.worker import default_name


@dataclass
class FakeGate:
    """Counts passes; ``refuse`` makes ``enter`` answer None (the run is stopping)."""

    refuse: bool = False
    entered: int = 0
    left: list[Any] = field(default_factory=list)
    pauses: list[tuple[float, str]] = field(default_factory=list)

    async def enter(self, stop: asyncio.Event) -> Any | None:
        if self.refuse:
            return None
        self.entered += 1
        return f"pass{self.entered}"

    async def leave(self, held: Any) -> None:
        self.left.append(held)

    async def pause(self, seconds: float, reason: str) -> None:
        self.pauses.append((seconds, reason))


def _ctx(tmp_path: Path) -> tuple[RunContext, MemoryStore]:
    settings = Settings(ytingest_home=tmp_path, retry_base_s=0.01, retry_max_s=0.02, download_attempts=3)
    settings.audio_dir.mkdir(parents=True, exist_ok=True)
    db = MemoryStore()
    return RunContext(settings, db, metrics_for(PIPELINE, settings)), db


async def test_a_video_awaited_by_a_feed_learns_how_it_left(tmp_path: Path) -> None:
    """``expect`` then ``settle``: the future has the outcome; settling an unawaited video does
    nothing; ``settle_all`` ends every open one; a failure settles as failed."""
    ctx, db = _ctx(tmp_path)
    stored, other, failing = ctx.expect("a"), ctx.expect("b"), ctx.expect("c")
    ctx.settle("a", "stored")
    ctx.settle("nobody-waits", "stored")
    await db.register_video(VideoRef("c", "http://x/c"))
    await ctx.fail(VideoRef("c", "http://x/c"), "download", "gone")
    ctx.settle_all("released")
    assert (await stored, await other, await failing) == ("stored", "released", "failed")
    assert ctx.outcomes == {}


async def test_every_download_holds_a_global_pass_and_a_429_pauses_the_cluster(tmp_path: Path) -> None:
    """A 429, then the file: two passes taken and both given back; the 429 paused every worker."""
    ctx, db = _ctx(tmp_path)
    ref = VideoRef("vid", "http://x/vid")
    await db.register_video(ref)
    gate = FakeGate()
    policy = DownloadPolicy(CapacityLimiter(1), SharedBackoff(base_s=0.01, cap_s=0.05), gate=gate)
    scripted = Scripted([RateLimitedError("HTTP Error 429", retry_after=0.02, kind="429")])
    audio = await _download_with_retries(ctx, scripted, ref, policy, counters=ctx.metrics.stages["download"])
    assert audio is not None and scripted.calls == 2
    assert gate.entered == 2 and gate.left == ["pass1", "pass2"]
    assert gate.pauses == [(0.02, "429")]


async def test_a_download_refused_by_a_stopping_gate_is_released(tmp_path: Path) -> None:
    """The gate says no (stopping): nothing is downloaded, nothing failed, the video is released."""
    ctx, db = _ctx(tmp_path)
    ref = VideoRef("vid", "http://x/vid")
    left = ctx.expect("vid")
    scripted = Scripted([])
    policy = DownloadPolicy(CapacityLimiter(1), SharedBackoff(), gate=FakeGate(refuse=True))
    assert (
        await _download_with_retries(ctx, scripted, ref, policy, counters=ctx.metrics.stages["download"])
        is None
    )
    assert scripted.calls == 0 and not ctx.failures and await left == "released"


def test_the_cluster_line_shows_jobs_rate_slots_against_the_cap_and_a_pause() -> None:
    line = cluster_line(
        {
            "workers": 3,
            "queue": {"queued": 7, "picked": 4},
            "videos_per_hour": 42,
            "downloads": 2,
            "download_cap": 4,
            "paused_s": 30.4,
            "pause_reason": "bot_check",
        }
    )
    assert "3 workers" in line and "7 waiting 4 held" in line and "42 videos/h" in line
    assert "downloads 2/4 global" in line and "paused 30 s (bot_check)" in line
    assert "no cap" in cluster_line({"queue": {}, "download_cap": 0})


def test_the_default_worker_name_is_a_safe_folder_name() -> None:
    name = default_name()
    assert Settings(worker_name=name).audio_dir.parts[-3:] == ("workers", name, "audio")


def test_a_worker_name_that_could_leave_its_folder_is_a_usage_error() -> None:
    """``--name ../x``: one-line ConfigError (exit 2), before any folder is made."""
    for bad in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(ConfigError, match="worker_name"):
            settings_from(argparse.Namespace(worker_name=bad))


# --- a claimed video's way through ClaimFeed (a fake database, a fake pipeline) ------------------


@dataclass
class ClaimsDb:
    """begin_claim/end_claim/register_video as the feed sees them; ``begin_fails`` raises first."""

    begin_fails: list[Exception] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    ended: list[tuple[str, str]] = field(default_factory=list)

    async def begin_claim(self, video_id: str, worker: str, *, max_deaths: int) -> ClaimVerdict:
        if self.begin_fails:
            raise self.begin_fails.pop(0)
        return ClaimVerdict("go")

    async def register_video(self, ref: VideoRef) -> None:
        self.registered.append(ref.id)

    async def end_claim(self, video_id: str, worker: str, outcome: str) -> None:
        self.ended.append((video_id, outcome))


@dataclass
class FakeJob:
    payload: bytes | None
    id: int = 1


async def _take(tmp_path: Path, db: ClaimsDb, outcome: str, payload: bytes | None = None) -> ClaimFeed:
    """Run one job through the feed; the fake pipeline ends the video with ``outcome``."""
    ctx, _ = _ctx(tmp_path)
    feed = ClaimFeed(cast(Database, db), "w1", until_empty=False)
    first: asyncio.Queue[VideoRef | None] = asyncio.Queue()

    async def pipeline() -> None:
        ref = await first.get()
        assert ref is not None
        ctx.settle(ref.id, outcome)

    runs = asyncio.create_task(pipeline())
    job = FakeJob(payload_of(VideoRef("v1", "http://x/v1")) if payload is None else payload)
    try:
        await feed._take(ctx, first, cast(Job, job))
    finally:
        runs.cancel()
    return feed


async def test_a_stored_video_closes_its_claim_and_completes_the_job(tmp_path: Path) -> None:
    db = ClaimsDb()
    feed = await _take(tmp_path, db, "stored")
    assert db.ended == [("v1", "stored")] and feed.outcomes["stored"] == 1 and not feed.held


async def test_a_released_video_goes_back_to_the_queue_at_once(tmp_path: Path) -> None:
    db = ClaimsDb()
    with pytest.raises(RetryRequested) as retry:
        await _take(tmp_path, db, "released")
    assert retry.value.delay == timedelta(0) and db.ended == [("v1", "released")]


async def test_a_crashed_run_leaves_the_claim_open_so_the_next_worker_counts_a_death(tmp_path: Path) -> None:
    db = ClaimsDb()
    with pytest.raises(RetryRequested) as retry:
        await _take(tmp_path, db, "crashed")
    assert retry.value.delay > timedelta(0) and db.ended == []


async def test_a_database_blink_retries_the_job_and_an_unknown_video_is_registered(tmp_path: Path) -> None:
    """A StoreError is a retry (never pgqueuer's parked failure); a queued video missing from the
    ledger is registered from the job and goes on."""
    with pytest.raises(RetryRequested):
        await _take(tmp_path, ClaimsDb([StoreError("gone", transient=True)]), "stored")
    db = ClaimsDb([ConfigError("video v1 is queued but not registered")])
    await _take(tmp_path, db, "stored")
    assert db.registered == ["v1"] and db.ended == [("v1", "stored")]


async def test_an_unreadable_job_is_done_with(tmp_path: Path) -> None:
    db = ClaimsDb()
    feed = await _take(tmp_path, db, "stored", payload=b"not json")
    assert db.ended == [] and not feed.held
