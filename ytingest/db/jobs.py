"""The cluster's job queue: pgqueuer's tables in the ytingest database, one job per video.

The job's payload is the video as the listing found it (``VideoRef``, JSON); its dedupe key is the
video id, so a video is queued (or held by a worker) at most once however often it is enqueued.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, fields

import asyncpg
from pgqueuer.db import AsyncpgDriver
from pgqueuer.ports import RepositoryPort
from pgqueuer.queries import Queries

from ytingest.db.workers import ENTRYPOINT, QUEUE_TABLE
from ytingest.items import VideoRef

_INSTALL_LOCK = 0x79746971  # "ytiq": one process installs pgqueuer's schema, the others wait
_REF_FIELDS = {f.name for f in fields(VideoRef)}


def queries_on(conn: asyncpg.Connection) -> Queries:
    return Queries(AsyncpgDriver(conn))


async def install_queue(conn: asyncpg.Connection) -> None:
    """Create pgqueuer's tables unless they exist (under a lock: workers start together)."""
    await conn.execute("SELECT pg_advisory_lock($1)", _INSTALL_LOCK)
    try:
        queries = queries_on(conn)
        if not await queries.schema_is_installed():
            await queries.install()
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _INSTALL_LOCK)


def payload_of(ref: VideoRef) -> bytes:
    return json.dumps(asdict(ref)).encode()


def ref_of(payload: bytes | None) -> VideoRef:
    """The video a job names (unknown keys from a newer ytingest are ignored)."""
    data = json.loads(payload or b"{}")
    return VideoRef(**{k: v for k, v in data.items() if k in _REF_FIELDS})


async def enqueue_refs(conn: asyncpg.Connection, refs: Sequence[VideoRef]) -> int:
    """Queue one job per video; a video queued or held already is skipped. Returns how many were added."""
    if not refs:
        return 0
    added = await queries_on(conn).enqueue(
        [ENTRYPOINT] * len(refs),
        [payload_of(r) for r in refs],
        [0] * len(refs),
        dedupe_key=[r.id for r in refs],
        on_conflict="skip",
    )
    return sum(job is not None for job in added)


async def jobs_left(queries: RepositoryPort) -> int:
    """Jobs waiting or held by any worker (a dead worker's too, until another takes them), not those
    pgqueuer parked as failed; over the queue's own connection (its driver serialises queries)."""
    sql = f"SELECT count(*) AS n FROM {QUEUE_TABLE} WHERE entrypoint = $1 AND status IN ('queued', 'picked')"
    rows = await queries.driver.fetch(sql, ENTRYPOINT)
    return int(str(rows[0]["n"]))
