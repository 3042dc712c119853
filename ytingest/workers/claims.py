"""claim: a worker's pipeline is fed from the cluster's job queue instead of a channel listing.

pgqueuer claims a video for this worker when it has room for one (``room.ClaimRoom``: what its
model works on plus what it can start soon, never more than WORKER_CLAIMS) and keeps the claim
alive with heartbeats while the handler runs, however long the video. The handler puts the video
on the pipeline and waits for it to leave: stored or failed (the job is done), or released by a
stopping worker (the job goes back to the queue at once). A worker killed outright stops
heartbeating; after WORKER_LEASE_S the queue hands its videos to another worker, and the
``claims`` table counts that death. After WORKER_MAX_DEATHS deaths a video fails with the
reason instead of killing workers forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pgqueuer.errors import RetryRequested
from pgqueuer.models import Job
from pgqueuer.qm import QueueManager

from ytingest.db.database import Database
from ytingest.db.jobs import install_queue, jobs_left, queries_on, ref_of
from ytingest.db.pool import store_errors
from ytingest.db.workers import ENTRYPOINT
from ytingest.errors import ConfigError, StoreError
from ytingest.items import VideoRef
from ytingest.logs import get_logger, redact
from ytingest.pipeline.context import RunContext
from ytingest.workers.room import ClaimRoom, PipelineView

log = get_logger()
IDLE_CHECK_S = 1.0  # how often an --until-empty worker with nothing in hand asks whether jobs are left


class RoomyQueue(QueueManager):
    """pgqueuer's manager that claims only while ``has_room()`` says so: it asks before each
    dequeue, counting the jobs it holds (its ``job_context``, the one just claimed included)."""

    has_room: Callable[[], bool] = staticmethod(lambda: True)

    async def fetch_jobs(  # the same generator, stopped early
        self, batch_size: int, global_concurrency_limit: int | None, heartbeat_timeout: timedelta
    ) -> AsyncGenerator[Job, None]:
        if not self.has_room():
            return
        jobs = super().fetch_jobs(batch_size, global_concurrency_limit, heartbeat_timeout)
        async with contextlib.aclosing(jobs):
            async for job in jobs:
                yield job  # the caller records it in ``job_context`` before it asks for the next
                if not self.has_room():
                    return


@dataclass
class ClaimFeed:
    """Feeds one worker's run (``Engine.work``) with the videos it claims."""

    db: Database
    worker: str
    until_empty: bool
    held: set[str] = field(default_factory=set)  # videos this worker holds now
    outcomes: Counter[str] = field(default_factory=Counter)  # how this worker's videos ended
    view: dict[str, Any] = field(default_factory=dict)  # the cluster's totals, for /status
    room: ClaimRoom | None = None  # how many it may hold (set when the feed starts)
    started: set[str] = field(default_factory=set)  # held videos with a window in the model

    async def __call__(self, ctx: RunContext, first: asyncio.Queue[VideoRef | None]) -> None:
        s = ctx.settings
        conn = await self.db.connect_one("open the job queue")
        try:
            with store_errors("set up the job queue", self.db.where, transient=False):
                await install_queue(conn)
            queue = RoomyQueue(queries_on(conn))
            self.room = ClaimRoom(s.worker_claims)
            queue.has_room = lambda: self._has_room(ctx, queue)
            ctx.metrics.progress.on_reach = self._reached
            # a worker with nothing to claim would ask 10 times a second while jobs wait (for
            # the cap, or for its own budget): with hour-long videos a claim 2 s late costs nothing
            queue.min_dequeue_poll_interval = timedelta(seconds=2)

            @queue.entrypoint(ENTRYPOINT, on_failure="hold")
            async def take(job: Job) -> None:
                await self._take(ctx, first, job)

            runner = asyncio.create_task(
                queue.run(
                    dequeue_timeout=timedelta(seconds=5),
                    batch_size=1,
                    max_concurrent_tasks=s.worker_claims,
                    heartbeat_timeout=timedelta(seconds=s.worker_lease_s),
                ),
                name="job-queue",
            )
            beat = asyncio.create_task(self._beat(ctx), name="worker-heartbeat")
            try:
                await self._until_done(ctx, queue, runner)
                queue.shutdown.set()  # no new claims; what is held is finished (or released) first
                await asyncio.wait({runner})
            except BaseException:  # the run failed (also while draining): every held video goes back,
                queue.shutdown.set()  # its claim left open, so the next worker counts a death
                ctx.settle_all("crashed")
                await asyncio.wait({runner}, timeout=30)  # never cancelled: pgqueuer would log its jobs
                raise  # as canceled (gone); once the connection closes, they wait for the lease
            finally:
                beat.cancel()
            if runner.done() and not runner.cancelled() and (failed := runner.exception()) is not None:
                reason = " ".join(redact(str(failed)).split()) or type(failed).__name__
                raise StoreError(f"the job queue failed at {self.db.where}: {reason}", transient=True)
        finally:
            ctx.settle_all("released")
            await self.db.close_one(conn)
        ctx.metrics.discovery_done = True
        await first.put(None)

    async def _until_done(self, ctx: RunContext, queue: QueueManager, runner: asyncio.Task[None]) -> None:
        """Until the run stops (SIGTERM), the queue fails, or with --until-empty no job is left."""
        while not ctx.stopping.is_set() and not runner.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IDLE_CHECK_S):
                    await ctx.stopping.wait()
            if self.room is not None:
                self.room.observe(self._pipeline(ctx, len(queue.job_context)))
            if self.until_empty and not self.held:
                try:
                    with store_errors("count the jobs left", self.db.where):
                        left = await jobs_left(queue.queries)
                except StoreError as exc:
                    log.warning("queue_check_failed", reason=str(exc))  # the runner says if it lasts
                    continue
                if left == 0:
                    log.info("queue_empty", worker=self.worker)
                    return

    def _reached(self, video_id: str) -> None:
        if video_id in self.held:
            self.started.add(video_id)

    def _pipeline(self, ctx: RunContext, taken: int) -> PipelineView:
        """The view ``ClaimRoom`` decides on: jobs in hand, the model stage, the queues between
        the downloads and the model (the decode queue)."""
        stages = list(ctx.metrics.stages.values())
        model = ctx.metrics.model_stage
        between = stages[1 : stages.index(model)] if model is not None else stages[1:]
        inbox = model.inbox if model is not None else None
        return PipelineView(
            taken=taken,
            started=len(self.started),
            model_idle=model is None or (model.busy == 0 and (inbox is None or inbox.empty())),
            model_worked=model is not None and (model.done > 0 or model.audio_seconds > 0),
            file_waiting=any(c.inbox is not None and not c.inbox.empty() for c in between),
            decoding=any(c.busy > 0 or (c.inbox is not None and not c.inbox.empty()) for c in between),
            ahead_most=ctx.tuning.io_workers + sum(c.inbox.maxsize for c in between if c.inbox is not None),
        )

    def _has_room(self, ctx: RunContext, queue: QueueManager) -> bool:
        if self.room is None or ctx.stopping.is_set():
            return False
        return self.room.has_room(self._pipeline(ctx, len(queue.job_context)))

    async def _beat(self, ctx: RunContext) -> None:
        """Every few seconds this worker's row in ``workers``; every third time the cluster's totals
        for /status (they read the whole queue: with many workers, less often)."""
        every = min(5.0, ctx.settings.worker_lease_s / 4)
        for beat in itertools.count():
            with contextlib.suppress(StoreError):  # a blink of the database is no reason to stop
                await self.db.worker_beat(
                    self.worker,
                    state="draining" if ctx.stopping.is_set() else "running",
                    in_flight=len(self.held),
                    done=self.outcomes["stored"],
                    failed=self.outcomes["failed"],
                )
                if beat % 3 == 0:
                    self.view = {
                        **await self.db.cluster_totals(),
                        "worker": self.worker,
                        "download_cap": ctx.settings.download_concurrency_global,
                        "workers": len(await self.db.live_worker_names(lease_s=ctx.settings.worker_lease_s)),
                    }
            await asyncio.sleep(every)

    async def _take(self, ctx: RunContext, first: asyncio.Queue[VideoRef | None], job: Job) -> None:
        """One claimed video, from claim to stored, failed or released. Nothing but a retry leaves
        here as an exception: pgqueuer would park the job as failed, out of every worker's reach."""
        try:
            ref = ref_of(job.payload)
        except (ValueError, TypeError) as exc:  # not a job of ours: done with, and said so
            log.error("job_unreadable", job_id=int(job.id), reason=str(exc)[:200])
            return
        try:
            await self._claimed(ctx, first, ref)
        except StoreError as exc:  # the database blinked: the job goes back, a little later
            raise RetryRequested(timedelta(seconds=5), reason=str(exc)) from None

    async def _claimed(self, ctx: RunContext, first: asyncio.Queue[VideoRef | None], ref: VideoRef) -> None:
        s = ctx.settings
        try:
            verdict = await self.db.begin_claim(ref.id, self.worker, max_deaths=s.worker_max_deaths)
        except ConfigError:  # queued but not in the ledger (a database restored apart): the job says all
            await self.db.register_video(ref)
            verdict = await self.db.begin_claim(ref.id, self.worker, max_deaths=s.worker_max_deaths)
        if verdict.action in ("done", "failed"):
            log.info("video_skipped", video_id=ref.id, reason=f"{verdict.action} already", worker=self.worker)
            ctx.metrics.skipped += 1
            return
        if verdict.action == "poison":
            why = (
                f"{verdict.deaths} workers died while holding this video (last: {verdict.last_worker});"
                " not tried again (ytingest retry --failed tries it)"
            )
            await ctx.fail(ref, "worker", why, permanent=True)
            await self.db.end_claim_as_poison(ref.id, self.worker)  # the count of deaths starts anew
            self.outcomes["failed"] += 1
            return
        log.info("video_claimed", video_id=ref.id, worker=self.worker, deaths_before=verdict.deaths)
        ctx.metrics.queued += 1
        self.held.add(ref.id)
        outcome = "released"
        try:
            outcome = await self._through_pipeline(ctx, first, ref)
        finally:
            self.held.discard(ref.id)
            self.started.discard(ref.id)
            self.outcomes[outcome] += 1
            if outcome != "crashed":  # a crash leaves the claim open: the next claimant counts a death
                with contextlib.suppress(StoreError):  # left open, it counts as a death: a retry, not a loss
                    await self.db.end_claim(ref.id, self.worker, outcome)
        if outcome == "released":
            raise RetryRequested(timedelta(0), reason="the worker stopped before this video")
        if outcome == "crashed":
            raise RetryRequested(timedelta(seconds=10), reason="the worker's run failed")

    @staticmethod
    async def _through_pipeline(ctx: RunContext, first: asyncio.Queue[VideoRef | None], ref: VideoRef) -> str:
        """Put ``ref`` on the pipeline (waiting for room: backpressure) and wait for it to leave."""
        left: asyncio.Future[Any] = ctx.expect(ref.id)
        put: asyncio.Future[Any] = asyncio.ensure_future(first.put(ref))
        try:
            await asyncio.wait([put, left], return_when=asyncio.FIRST_COMPLETED)
            return str(await left)
        finally:
            put.cancel()


def clean_dead_workers(workers_dir: Path, live: set[str], me: str) -> list[str]:
    """Delete the audio folders of workers sharing this home that are no longer alive (their
    leftovers); a live worker's folder, and this worker's own, are left alone."""
    removed: list[str] = []
    if not workers_dir.is_dir():
        return removed
    for folder in workers_dir.iterdir():
        if folder.is_dir() and folder.name not in live and folder.name != me and (folder / "audio").is_dir():
            shutil.rmtree(folder / "audio", ignore_errors=True)
            removed.append(folder.name)
    return removed
