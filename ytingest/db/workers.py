"""``ClusterStore``: the ``workers`` and ``claims`` tables, and the cluster's totals.

Many ``ytingest worker`` processes share one database. The job queue itself is pgqueuer's
(``ytingest.db.jobs``); these tables add what the queue does not keep: who each worker is
(host, pid, GPU, heartbeat, counts), and every claim of a video with how it ended. A claim still
open when the video is claimed again belonged to a worker that died holding it: those deaths make
a poison video fail instead of killing workers forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ytingest.db.pool import Store, retried
from ytingest.errors import ConfigError

QUEUE_TABLE = "pgqueuer"  # pgqueuer's jobs table (its default name)
ENTRYPOINT = "ytingest.video"  # the queue's one kind of job: a video
GATE_LOCKS = 0x79746764  # "ytgd": the first key of the download gate's advisory locks (slot = second)


@dataclass(frozen=True, slots=True)
class ClaimVerdict:
    """What a worker that just took a video from the queue should do with it."""

    action: str  # "go", "done" (stored already), "failed" (failed permanently), "poison"
    deaths: int = 0  # workers that died holding it so far
    last_worker: str = ""  # the last of them


class ClusterStore(Store):
    """Workers' heartbeats, claims and the cluster view."""

    @retried
    async def register_worker(
        self, name: str, *, host: str, pid: int, gpu: str | None, lease_s: float
    ) -> None:
        """Add (or take over) ``name``'s row; a live worker of that name elsewhere is a ConfigError."""
        async with self._conn("register worker") as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT host, pid, state, now() - seen_at < make_interval(secs => $2) AS live"
                " FROM workers WHERE name = $1 FOR UPDATE",
                name,
                lease_s,
            )
            elsewhere = row is not None and (row["host"], row["pid"]) != (host, pid)
            if elsewhere and row["live"] and row["state"] != "stopped":
                raise ConfigError(
                    f"a worker named {name!r} is running on {row['host']} (pid {row['pid']});"
                    " use another --name"
                )
            await conn.execute(
                """INSERT INTO workers (name, host, pid, gpu) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (name) DO UPDATE SET host = $2, pid = $3, gpu = $4, state = 'running',
                     started_at = now(), seen_at = now(), in_flight = 0, done = 0, failed = 0""",
                name,
                host,
                pid,
                gpu,
            )

    @retried
    async def worker_beat(self, name: str, *, state: str, in_flight: int, done: int, failed: int) -> None:
        """The worker is alive: its state and counts now."""
        async with self._conn("worker heartbeat") as conn:
            await conn.execute(
                "UPDATE workers SET seen_at = now(), state = $2, in_flight = $3, done = $4, failed = $5"
                " WHERE name = $1",
                name,
                state,
                in_flight,
                done,
                failed,
            )

    @retried
    async def workers(self, *, lease_s: float) -> list[dict[str, Any]]:
        """Every worker row, newest first, with ``live`` (a heartbeat within ``lease_s``) and its
        videos per hour since it started."""
        async with self._conn("list workers") as conn:
            rows = await conn.fetch(
                """SELECT name, host, pid, gpu, state, started_at, seen_at, in_flight, done, failed,
                          state <> 'stopped' AND now() - seen_at < make_interval(secs => $1) AS live,
                          extract(epoch FROM now() - seen_at)::float8 AS seen_s_ago,
                          (done * 3600.0 / greatest(extract(epoch FROM seen_at - started_at), 1))::float8
                            AS videos_per_hour
                   FROM workers ORDER BY started_at DESC""",
                lease_s,
            )
        return [dict(r) for r in rows]

    @retried
    async def live_worker_names(self, *, lease_s: float) -> set[str]:
        async with self._conn("list workers") as conn:
            rows = await conn.fetch(
                "SELECT name FROM workers"
                " WHERE state <> 'stopped' AND now() - seen_at < make_interval(secs => $1)",
                lease_s,
            )
        return {r["name"] for r in rows}

    @retried
    async def is_queued(self, video_id: str) -> bool:
        """Whether a job for ``video_id`` is waiting or held now."""
        async with self._conn("read the job queue") as conn:
            if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", QUEUE_TABLE):
                return False
            return bool(
                await conn.fetchval(
                    f"SELECT EXISTS (SELECT 1 FROM {QUEUE_TABLE} WHERE entrypoint = $1 AND dedupe_key = $2"
                    " AND status IN ('queued', 'picked'))",
                    ENTRYPOINT,
                    video_id,
                )
            )

    @retried
    async def begin_claim(self, video_id: str, worker: str, *, max_deaths: int) -> ClaimVerdict:
        """Open ``worker``'s claim on ``video_id``, unless it is stored or failed permanently already,
        or ``max_deaths`` workers died holding it. Open claims of others are closed as ``died``
        (the queue hands a claim on only when its holder's heartbeat stopped); a second claim
        counts as another attempt."""
        async with self._conn("claim video") as conn, conn.transaction():
            video = await conn.fetchrow(
                "SELECT status, permanent FROM videos WHERE id = $1 FOR UPDATE", video_id
            )
            if video is None:
                raise ConfigError(f"video {video_id} is queued but not registered (enqueue registers it)")
            died = await conn.fetch(
                "UPDATE claims SET ended_at = now(), outcome = 'died'"
                " WHERE video_id = $1 AND ended_at IS NULL RETURNING worker",
                video_id,
            )
            if video["status"] == "done":
                return ClaimVerdict("done")
            if video["status"] == "failed" and video["permanent"]:
                return ClaimVerdict("failed")
            deaths = await conn.fetchval(  # since the video last ended (stored, failed): a retry starts anew
                """SELECT count(*) FROM claims WHERE video_id = $1 AND outcome = 'died'
                     AND id > coalesce((SELECT max(id) FROM claims WHERE video_id = $1
                                        AND outcome IN ('stored', 'failed', 'waiting')), 0)""",
                video_id,
            )
            last = died[-1]["worker"] if died else ""
            if deaths >= max_deaths:  # the caller fails the video, then ``end_claim_as_poison``
                return ClaimVerdict("poison", deaths, last)
            earlier = await conn.fetchval("SELECT count(*) FROM claims WHERE video_id = $1", video_id)
            await conn.execute("INSERT INTO claims (video_id, worker) VALUES ($1, $2)", video_id, worker)
            await conn.execute(
                "UPDATE videos SET status = CASE WHEN status = 'failed' THEN 'pending' ELSE status END,"
                " attempts = attempts + $2, updated_at = now() WHERE id = $1",
                video_id,
                1 if earlier else 0,  # the first attempt was counted when the video was enqueued
            )
        return ClaimVerdict("go", deaths, last)

    @retried
    async def end_claim_as_poison(self, video_id: str, worker: str) -> None:
        """``worker`` failed ``video_id`` as poison: a closed ``failed`` claim, from which a later
        retry of the video counts deaths anew."""
        async with self._conn("close claim") as conn:
            await conn.execute(
                "INSERT INTO claims (video_id, worker, ended_at, outcome) VALUES ($1, $2, now(), 'failed')",
                video_id,
                worker,
            )

    @retried
    async def end_claim(self, video_id: str, worker: str, outcome: str) -> None:
        """Close ``worker``'s open claim on ``video_id`` with how it ended."""
        async with self._conn("close claim") as conn:
            await conn.execute(
                "UPDATE claims SET ended_at = now(), outcome = $3"
                " WHERE video_id = $1 AND worker = $2 AND ended_at IS NULL",
                video_id,
                worker,
                outcome,
            )

    @retried
    async def cluster_totals(self) -> dict[str, Any]:
        """Queue depth, videos stored per hour (last 10 minutes, all workers), downloads in flight
        under the global cap, and the global download pause."""
        async with self._conn("read the cluster") as conn:
            queue: dict[str, int] = {"queued": 0, "picked": 0}
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", QUEUE_TABLE):
                for r in await conn.fetch(
                    f"SELECT status::text AS status, count(*) AS n FROM {QUEUE_TABLE} GROUP BY status"
                ):
                    queue[r["status"]] = r["n"]
            row = await conn.fetchrow(
                """SELECT
                     (SELECT count(*) FROM videos WHERE done_at > now() - interval '10 minutes') * 6
                       AS videos_per_hour,
                     (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1
                        AND objsubid = 2 AND granted
                        AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
                       AS downloads,
                     greatest(extract(epoch FROM paused_until - now()), 0)::float8 AS paused_s,
                     pause_reason
                   FROM download_gate""",
                GATE_LOCKS,
            )
        totals: dict[str, Any] = {"queue": queue}
        if row is not None:
            totals.update(dict(row))
        return totals
