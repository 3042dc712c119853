"""``Database``: the asyncpg pool and every query the engine and the CLI run.

asyncpg and OS errors are mapped to ``StoreError`` / ``ConfigError`` here, at the boundary.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlsplit

import asyncpg
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector

from ytingest.db.schema import migrate, prepare
from ytingest.errors import ConfigError, StoreError
from ytingest.items import EmbeddedTranscript, SearchHit, VideoRef
from ytingest.logs import get_logger, redact
from ytingest.speakers.cluster import Unknown
from ytingest.speakers.voices import Voiceprint

log = get_logger()

SEGMENT_COLUMNS = (
    "video_id", "idx", "start_s", "end_s", "text",
    "speaker", "speaker_score", "avg_logprob", "embedding", "embed_model",
)  # fmt: skip
_HNSW_INDEX = (
    "CREATE INDEX IF NOT EXISTS segments_embedding_hnsw ON segments USING hnsw (embedding vector_cosine_ops)"
)
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)
# the connection or the server failed, not the statement: worth trying again
_LINK_ERRORS = (
    asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError,
)  # fmt: skip
P = ParamSpec("P")
R = TypeVar("R")


def retried(
    method: Callable[Concatenate[Database, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[Database, P], Coroutine[Any, Any, R]]:
    """Retry an idempotent database call while the connection is failing, for up to DB_RETRY_S.

    Every write below is idempotent (upserts, or one transaction that replaces a video's
    rows), so running it again after a reset can neither lose nor duplicate rows.
    """

    @functools.wraps(method)
    async def wrapper(self: Database, *args: P.args, **kwargs: P.kwargs) -> R:
        deadline = time.monotonic() + self.retry_s
        attempt = 0
        while True:
            try:
                return await method(self, *args, **kwargs)
            except StoreError as exc:
                attempt += 1
                if not exc.transient or time.monotonic() >= deadline or self._pool is None:
                    raise
                delay = min(5.0, 0.2 * 2 ** min(attempt, 5), max(0.0, deadline - time.monotonic()))
                log.warning("db_retry", what=method.__name__, attempt=attempt, wait_s=round(delay, 2),
                            reason=str(exc))  # fmt: skip
                await asyncio.sleep(delay)

    return wrapper  # type: ignore[return-value]  # functools.wraps names the self parameter


def describe_dsn(dsn: str) -> str:
    """A printable name for a DSN: host/database, never the password."""
    parts = urlsplit(dsn)
    host = parts.hostname or dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get(
        "host", "localhost"
    )
    return f"{host}{parts.path or '/'}"


def timestamp_url(webpage_url: str, seconds: float) -> str:
    """A link that opens the video at ``seconds`` (YouTube ``t=``, else a media fragment)."""
    t = max(0, int(seconds))
    if "youtube.com/" in webpage_url or "youtu.be/" in webpage_url:
        return f"{webpage_url}{'&' if '?' in webpage_url else '?'}t={t}s"
    return f"{webpage_url.split('#', 1)[0]}#t={t}"


class Database:
    """A pool of DB_WORKERS connections with pgvector's codec, and the ledger/search queries."""

    def __init__(self, dsn: str, *, pool_size: int = 2, retry_s: float = 60.0) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._dim: int | None = None
        self.retry_s = retry_s
        self.where = describe_dsn(dsn)

    def __repr__(self) -> str:
        return f"Database({self.where!r})"

    async def connect(self, *, connect_timeout: float = 15.0) -> None:
        """Open the pool (with pgvector's codec) and read which embedding size the schema has."""
        try:
            conn = await asyncpg.connect(self._dsn, timeout=connect_timeout)
            try:
                self._dim = await prepare(conn)
            finally:
                await conn.close()
            self._pool = await asyncpg.create_pool(
                self._dsn, min_size=1, max_size=self._pool_size, init=register_vector, timeout=connect_timeout
            )
        except ConfigError:
            raise
        except _DB_ERRORS as exc:
            reason = redact(str(exc)) or type(exc).__name__
            raise ConfigError(f"cannot use database at {self.where}: {reason}") from None

    async def embedding_dim(self) -> int | None:
        """The vector size the schema was built for; None for a new database."""
        return self._dim

    async def migrate(self, dim: int) -> None:
        """Create or upgrade the schema for ``dim``-d embeddings."""
        async with self._conn("migrate schema") as conn:
            await migrate(conn, dim)
        self._dim = dim

    async def check_dim(self, dim: int) -> None:
        if self._dim != dim:
            raise ConfigError(
                f"the database holds {self._dim}-d embeddings but the embedding model gives {dim}-d;"
                " use the model the database was built with, or a new database"
            )

    async def close(self, grace_s: float = 10.0) -> None:
        """Close the pool gracefully; terminate it if that takes longer than ``grace_s``."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        try:
            await asyncio.wait_for(pool.close(), grace_s)
        except (TimeoutError, *_DB_ERRORS):
            pool.terminate()

    @asynccontextmanager
    async def _conn(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise StoreError("database is not connected")
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except _DB_ERRORS as exc:
            reason = " ".join(redact(str(exc)).split()) or type(exc).__name__
            raise StoreError(f"{what} failed at {self.where}: {reason}",
                             transient=isinstance(exc, _LINK_ERRORS)) from exc  # fmt: skip

    # ---- ledger ---------------------------------------------------------------------------

    @retried
    async def register_channel(self, url: str) -> None:
        async with self._conn("register channel") as conn:
            await conn.execute(
                "INSERT INTO channels (url, last_run) VALUES ($1, now())"
                " ON CONFLICT (url) DO UPDATE SET last_run = now()",
                url,
            )

    @retried
    async def register_video(self, ref: VideoRef) -> None:
        """Record a video as pending (keeps a done video done) and count an attempt."""
        async with self._conn("register video") as conn:
            await conn.execute(
                """INSERT INTO videos (id, channel, title, url, webpage_url, duration, attempts)
                   VALUES ($1, NULLIF($2, ''), $3, $4, $5, $6, 1)
                   ON CONFLICT (id) DO UPDATE SET
                     title = EXCLUDED.title, url = EXCLUDED.url, webpage_url = EXCLUDED.webpage_url,
                     duration = EXCLUDED.duration, attempts = videos.attempts + 1,
                     status = CASE WHEN videos.status = 'done' THEN 'done' ELSE 'pending' END,
                     updated_at = now()""",
                ref.id, ref.channel, ref.title, ref.url, ref.webpage_url, ref.duration,
            )  # fmt: skip

    @retried
    async def mark_failed(self, video_id: str, stage: str, reason: str, *, permanent: bool = False) -> None:
        """Record why a video failed; ``permanent`` ones are not retried by a plain re-run."""
        async with self._conn("record failure") as conn:
            await conn.execute(
                "UPDATE videos SET status = 'failed', error = $2, error_stage = $3, permanent = $4,"
                " updated_at = now() WHERE id = $1 AND status <> 'done'",
                video_id, reason, stage, permanent,
            )  # fmt: skip

    @retried
    async def count_attempt(self, video_id: str) -> None:
        """One more try at a video within this run (a retry after a transient error)."""
        async with self._conn("count attempt") as conn:
            await conn.execute("UPDATE videos SET attempts = attempts + 1 WHERE id = $1", video_id)

    @retried
    async def skip_reason(self, video_id: str) -> str | None:
        """Why discovery should skip this video: stored already, or failed permanently; else None."""
        async with self._conn("read ledger") as conn:
            row = await conn.fetchrow("SELECT status, permanent FROM videos WHERE id = $1", video_id)
        if row is None:
            return None
        if row["status"] == "done":
            return "already stored"
        if row["status"] == "failed" and row["permanent"]:
            return "failed permanently (ytingest retry --failed tries again)"
        return None

    @retried
    async def failed_refs(self, *, include_pending: bool = False) -> list[VideoRef]:
        """Videos to try again (failed, and optionally pending), oldest first, as VideoRefs."""
        states = ["failed", "pending"] if include_pending else ["failed"]
        async with self._conn("read failures") as conn:
            rows = await conn.fetch(
                "SELECT id, url, title, duration, channel, webpage_url FROM videos"
                " WHERE status = ANY($1::text[]) ORDER BY created_at, id",
                states,
            )
            await conn.execute("UPDATE videos SET permanent = false WHERE status = ANY($1::text[])", states)
        return [VideoRef(r["id"], r["url"], r["title"], r["duration"], r["channel"] or "", r["webpage_url"])
                for r in rows]  # fmt: skip

    async def store_transcript(self, item: EmbeddedTranscript, *, asr_model: str, embed_model: str) -> None:
        """One video: ``store_transcripts([item])``."""
        await self.store_transcripts([item], asr_model=asr_model, embed_model=embed_model)

    @retried
    async def store_transcripts(
        self, items: Sequence[EmbeddedTranscript], *, asr_model: str, embed_model: str
    ) -> None:
        """Delete the videos' old rows, binary COPY the new ones straight into ``segments`` and mark
        the videos done, all in one transaction: a video is stored whole or not at all, and storing
        it again replaces its rows, never duplicates them. (No staging table: nothing to merge.)"""
        records = segment_records(items, embed_model)
        ids = [it.transcript.video.id for it in items]
        async with self._conn(f"store {_videos(ids)}") as conn, conn.transaction():
            await conn.execute("DELETE FROM segments WHERE video_id = ANY($1::text[])", ids)
            if records:
                await conn.copy_records_to_table("segments", records=records, columns=SEGMENT_COLUMNS)
            status = await conn.execute(
                """UPDATE videos v SET status = 'done', error = NULL, error_stage = NULL,
                     segments = u.n, audio_seconds = u.seconds, asr_model = $4, embed_model = $5,
                     done_at = now(), updated_at = now()
                   FROM unnest($1::text[], $2::int[], $3::real[]) AS u(id, n, seconds)
                   WHERE v.id = u.id""",
                ids, [len(it.transcript.segments) for it in items],
                [it.transcript.audio_seconds for it in items], asr_model, embed_model,
            )  # fmt: skip
            if status != f"UPDATE {len(set(ids))}":
                raise StoreError(f"{_videos(ids)}: not every video is registered")

    async def ensure_search_index(self) -> bool:
        """Build the HNSW index if it is missing (after a first load: one bulk build, not one graph
        insert per row while storing). True when it was built now."""
        async with self._conn("build the search index") as conn:
            if await conn.fetchval("SELECT to_regclass('segments_embedding_hnsw') IS NOT NULL"):
                return False
            await conn.execute(_HNSW_INDEX)
        return True

    # ---- reads ----------------------------------------------------------------------------

    async def search(
        self, vector: npt.NDArray[np.float32], *, limit: int = 10, speaker: str | None = None
    ) -> list[SearchHit]:
        """Nearest segments by cosine distance (HNSW), optionally of one speaker."""
        async with self._conn("search") as conn, conn.transaction():
            await conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            rows = await conn.fetch(
                """SELECT s.video_id, v.title, v.webpage_url, v.url, s.start_s, s.end_s, s.text,
                          s.speaker, 1 - (s.embedding <=> $1) AS score
                   FROM segments s JOIN videos v ON v.id = s.video_id
                   WHERE ($3::text IS NULL OR s.speaker = $3)
                   ORDER BY s.embedding <=> $1 LIMIT $2""",
                vector, limit, speaker,
            )  # fmt: skip
        return [
            SearchHit(
                video_id=r["video_id"],
                title=r["title"],
                url=timestamp_url(r["webpage_url"] or r["url"], r["start_s"]),
                start=r["start_s"],
                end=r["end_s"],
                text=r["text"],
                speaker=r["speaker"],
                score=float(r["score"]),
            )
            for r in rows
        ]

    async def status(self) -> dict[str, Any]:
        """Counts by status, stored segments, and every failure with its reason."""
        async with self._conn("status") as conn:
            counts = {r["status"]: r["n"] for r in await conn.fetch(
                "SELECT status, count(*) AS n FROM videos GROUP BY status")}  # fmt: skip
            segments = await conn.fetchval("SELECT count(*) FROM segments")
            failures = await conn.fetch(
                "SELECT id, error, error_stage, attempts FROM videos"
                " WHERE status = 'failed' ORDER BY updated_at"
            )
        return {
            "videos": {k: counts.get(k, 0) for k in ("done", "failed", "pending")},
            "segments": segments,
            "failures": [
                {
                    "video_id": r["id"],
                    "reason": r["error"],
                    "stage": r["error_stage"],
                    "attempts": r["attempts"],
                }
                for r in failures
            ],
        }

    async def video_segments(self, video_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """A stored video's row and its segments in order, or None if it is not stored."""
        async with self._conn("export") as conn:
            video = await conn.fetchrow(
                "SELECT id, title, webpage_url, url, duration, status FROM videos WHERE id = $1", video_id
            )
            if video is None or video["status"] != "done":
                return None
            rows = await conn.fetch(
                "SELECT idx, start_s, end_s, text, speaker, speaker_score, avg_logprob"
                " FROM segments WHERE video_id = $1 ORDER BY idx",
                video_id,
            )
        return dict(video), [dict(r) for r in rows]

    async def voiceprints(self) -> list[Voiceprint]:
        """Every enrolled voiceprint, by name."""
        async with self._conn("read voiceprints") as conn:
            rows = await conn.fetch("SELECT name, embedding, model, files FROM voiceprints ORDER BY name")
        return [
            Voiceprint(r["name"], _floats(r["embedding"]), r["model"], json.loads(r["files"])) for r in rows
        ]

    async def save_voiceprints(self, prints: Sequence[Voiceprint], *, keep: Sequence[str]) -> None:
        """Upsert ``prints``; delete voiceprints whose name is not in ``keep`` (gone from voices/)."""
        async with self._conn("save voiceprints") as conn, conn.transaction():
            await conn.execute("DELETE FROM voiceprints WHERE NOT (name = ANY($1::text[]))", list(keep))
            await conn.executemany(
                """INSERT INTO voiceprints (name, embedding, model, files) VALUES ($1, $2, $3, $4::jsonb)
                   ON CONFLICT (name) DO UPDATE SET embedding = EXCLUDED.embedding, model = EXCLUDED.model,
                     files = EXCLUDED.files, updated_at = now()""",
                [(p.name, p.vector, p.model, json.dumps(dict(p.files), sort_keys=True)) for p in prints],
            )

    async def unknown_speakers(self, model: str) -> list[Unknown]:
        """The anonymous voices met so far with this speaker model."""
        async with self._conn("read unknown speakers") as conn:
            rows = await conn.fetch(
                "SELECT label, embedding, weight FROM unknown_speakers WHERE model = $1 ORDER BY label", model
            )
        return [Unknown(r["label"], _floats(r["embedding"]), r["weight"]) for r in rows]

    async def save_unknown_speakers(self, unknowns: Sequence[Unknown], *, model: str) -> None:
        """Upsert the anonymous voices (label, running mean, weight)."""
        async with self._conn("save unknown speakers") as conn:
            await conn.executemany(
                """INSERT INTO unknown_speakers (label, embedding, model, weight) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (label) DO UPDATE SET embedding = EXCLUDED.embedding, model = EXCLUDED.model,
                     weight = EXCLUDED.weight, updated_at = now()""",
                [(u.label, u.vector, model, u.weight) for u in unknowns],
            )

    async def max_unknown_number(self) -> int:
        """The highest N of any ``unknown-N`` label stored on a segment or kept as a voice."""
        async with self._conn("read speaker labels") as conn:
            value = await conn.fetchval(
                """SELECT max(substring(label FROM '^unknown-([0-9]+)$')::int) FROM (
                     SELECT label FROM unknown_speakers UNION ALL
                     SELECT DISTINCT speaker FROM segments WHERE speaker LIKE 'unknown-%') AS l(label)"""
            )
        return int(value or 0)

    async def speakers_report(self) -> dict[str, Any]:
        """Enrolled voiceprints and anonymous voices, with how many segments and videos each has."""
        async with self._conn("speakers") as conn:
            counts = {r["speaker"]: (r["segments"], r["videos"]) for r in await conn.fetch(
                "SELECT speaker, count(*) AS segments, count(DISTINCT video_id) AS videos FROM segments"
                " WHERE speaker IS NOT NULL GROUP BY speaker")}  # fmt: skip
            prints = await conn.fetch("SELECT name, model, files, updated_at FROM voiceprints ORDER BY name")
        enrolled = {p["name"] for p in prints}
        return {
            "enrolled": [
                {
                    "name": p["name"],
                    "model": p["model"],
                    "clips": sorted(json.loads(p["files"])),
                    "segments": counts.get(p["name"], (0, 0))[0],
                    "videos": counts.get(p["name"], (0, 0))[1],
                    "updated_at": p["updated_at"].isoformat(),
                }
                for p in prints
            ],  # fmt: skip
            "unknown": [
                {"label": label, "segments": n, "videos": v}
                for label, (n, v) in sorted(counts.items())
                if label not in enrolled
            ],
        }


def segment_records(items: Sequence[EmbeddedTranscript], embed_model: str) -> list[tuple[Any, ...]]:
    """The ``segments`` rows of ``items``, in SEGMENT_COLUMNS order, for a binary COPY."""
    return [
        (it.transcript.video.id, s.idx, s.start, s.end, s.text, s.speaker, s.speaker_score, s.avg_logprob,
         vec, embed_model)
        for it in items
        for s, vec in zip(it.transcript.segments, it.vectors, strict=True)
    ]  # fmt: skip


def _videos(ids: Sequence[str]) -> str:
    """``video a`` or ``3 videos (a, b, c)`` for messages."""
    return f"video {ids[0]}" if len(ids) == 1 else f"{len(ids)} videos ({', '.join(ids[:5])})"


def _floats(value: Any) -> npt.NDArray[np.float32]:
    """A pgvector value (numpy array or ``pgvector.Vector``, by codec version) as float32."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)
