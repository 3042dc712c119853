"""Claims that spread, on real PostgreSQL and pgqueuer: a worker's queue manager (``RoomyQueue``)
claims only while it has room, another worker takes the rest, and a claim held longer than the
lease is never taken from its live holder."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
import pytest
from pgqueuer.models import Job

from ytingest.db.jobs import enqueue_refs, install_queue, queries_on, ref_of
from ytingest.db.workers import ENTRYPOINT
from ytingest.items import VideoRef
from ytingest.workers.claims import RoomyQueue

LEASE = timedelta(seconds=2)  # heartbeats every second


@dataclass
class Worker:
    """One worker's queue manager on its own connection; its handler holds each video until
    ``release`` is set. ``room(held)`` says whether it may claim one more."""

    name: str
    room: Callable[[int], bool]
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: list[str] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def running(dsn: str, worker: Worker) -> AsyncIterator[RoomyQueue]:
    conn = await asyncpg.connect(dsn)
    queue = RoomyQueue(queries_on(conn))
    queue.min_dequeue_poll_interval = timedelta(seconds=0.2)
    queue.has_room = lambda: worker.room(len(queue.job_context))

    @queue.entrypoint(ENTRYPOINT)
    async def take(job: Job) -> None:
        video = ref_of(job.payload).id
        worker.held.append(video)
        worker.taken.append(video)
        try:
            await worker.release.wait()
        finally:
            worker.held.remove(video)

    task = asyncio.create_task(
        queue.run(
            dequeue_timeout=timedelta(seconds=1),
            batch_size=1,
            max_concurrent_tasks=8,
            heartbeat_timeout=LEASE,
        )
    )
    try:
        yield queue
    finally:
        worker.release.set()
        queue.shutdown.set()
        await asyncio.wait_for(task, 30)
        await conn.close()


async def until(what: Callable[[], bool]) -> None:
    """Polls ``what`` (state changed by pgqueuer's tasks) for up to 20 s."""
    async with asyncio.timeout(20.0):
        while not what():  # noqa: ASYNC110  # nothing to wait on: pgqueuer's own tasks change it
            await asyncio.sleep(0.05)


@pytest.fixture
async def four_jobs(fresh_dsn: str) -> list[str]:
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await install_queue(conn)
        refs = [VideoRef(f"v{i}", f"http://x/v{i}") for i in range(4)]
        assert await enqueue_refs(conn, refs) == 4
    finally:
        await conn.close()
    return [r.id for r in refs]


async def test_a_worker_claims_only_while_it_has_room_and_another_takes_the_rest(
    fresh_dsn: str, four_jobs: list[str]
) -> None:
    """A with room for one holds one of four (not all of them) for as long as it works; B, started
    later, takes one; when A gets room for two it takes one more; finished, the rest are done."""
    budget = {"a": 1}
    a = Worker("a", lambda held: held < budget["a"])
    b = Worker("b", lambda held: held < 1)
    async with running(fresh_dsn, a):
        await until(lambda: len(a.held) == 1)
        await asyncio.sleep(2.0)  # ten polls: still one
        assert len(a.held) == 1
        async with running(fresh_dsn, b):
            await until(lambda: len(b.held) == 1)
            budget["a"] = 2  # the model has the first: the next may download
            await until(lambda: len(a.held) == 2)
            await asyncio.sleep(1.0)
            assert len(a.held) == 2 and len(b.held) == 1
            assert set(a.held).isdisjoint(b.held)
            a.release.set()
            b.release.set()
            await until(lambda: len(a.taken) + len(b.taken) == 4)
    assert sorted(a.taken + b.taken) == four_jobs  # each once


async def test_a_claim_held_past_the_lease_stays_with_its_live_holder(
    fresh_dsn: str, four_jobs: list[str]
) -> None:
    """A long video: A holds its claim three leases long; B, idle with room to spare, takes the other
    jobs from the queue and never A's."""
    a = Worker("a", lambda held: held < 1)
    b = Worker("b", lambda held: held < 8)
    async with running(fresh_dsn, a):
        await until(lambda: len(a.held) == 1)
        long_one = a.held[0]
        async with running(fresh_dsn, b):
            await until(lambda: len(b.held) == 3)
            b.release.set()
            await asyncio.sleep(3 * LEASE.total_seconds())
            assert a.held == [long_one] and long_one not in b.taken
    assert sorted(a.taken + b.taken) == four_jobs
