"""``Database``: the asyncpg pool and every query the engine and the CLI run.

asyncpg and OS errors are mapped to ``StoreError`` / ``ConfigError`` here, at the boundary.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector

from ytingest.db.schema import migrate, prepare
from ytingest.errors import ConfigError, StoreError
from ytingest.items import EmbeddedTranscript, SearchHit, VideoRef
from ytingest.logs import redact

_STAGING = "ytingest_staging"
_COLUMNS = (
    "video_id", "idx", "start_s", "end_s", "text",
    "speaker", "speaker_score", "avg_logprob", "embedding", "embed_model",
)  # fmt: skip
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


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

    def __init__(self, dsn: str, *, pool_size: int = 2) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._dim: int | None = None
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
            raise StoreError(
                f"{what} failed at {self.where}: {redact(str(exc)) or type(exc).__name__}"
            ) from exc

    # ---- ledger ---------------------------------------------------------------------------

    async def register_channel(self, url: str) -> None:
        async with self._conn("register channel") as conn:
            await conn.execute(
                "INSERT INTO channels (url, last_run) VALUES ($1, now())"
                " ON CONFLICT (url) DO UPDATE SET last_run = now()",
                url,
            )

    async def done_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are already stored."""
        async with self._conn("read ledger") as conn:
            rows = await conn.fetch(
                "SELECT id FROM videos WHERE id = ANY($1::text[]) AND status = 'done'", list(ids)
            )
        return {r["id"] for r in rows}

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

    async def mark_failed(self, video_id: str, stage: str, reason: str) -> None:
        async with self._conn("record failure") as conn:
            await conn.execute(
                "UPDATE videos SET status = 'failed', error = $2, error_stage = $3, updated_at = now()"
                " WHERE id = $1 AND status <> 'done'",
                video_id, reason, stage,
            )  # fmt: skip

    async def store_transcript(self, item: EmbeddedTranscript, *, asr_model: str, embed_model: str) -> None:
        """Binary COPY into staging, then move the rows and mark the video done in one transaction."""
        t = item.transcript
        vid = t.video.id
        records = [
            (vid, s.idx, s.start, s.end, s.text, s.speaker, s.speaker_score, s.avg_logprob, vec, embed_model)
            for s, vec in zip(t.segments, item.vectors, strict=True)
        ]
        cols = ", ".join(_COLUMNS)
        async with self._conn(f"store video {vid}") as conn, conn.transaction():
            await conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} "
                f"(LIKE segments INCLUDING DEFAULTS EXCLUDING GENERATED) ON COMMIT DELETE ROWS"
            )
            if records:
                await conn.copy_records_to_table(_STAGING, records=records, columns=_COLUMNS)
            await conn.execute("DELETE FROM segments WHERE video_id = $1", vid)
            await conn.execute(f"INSERT INTO segments ({cols}) SELECT {cols} FROM {_STAGING}")
            status = await conn.execute(
                """UPDATE videos SET status = 'done', error = NULL, error_stage = NULL,
                     segments = $2, audio_seconds = $3, asr_model = $4, embed_model = $5,
                     done_at = now(), updated_at = now()
                   WHERE id = $1""",
                vid, len(records), t.audio_seconds, asr_model, embed_model,
            )  # fmt: skip
            if status != "UPDATE 1":
                raise StoreError(f"video {vid} is not registered")

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

    async def fetch_all_segments(self) -> Sequence[asyncpg.Record]:
        """Every stored segment (video_id, idx, text): for tests and checks, not for big databases."""
        async with self._conn("read segments") as conn:
            rows: Sequence[asyncpg.Record] = await conn.fetch(
                "SELECT video_id, idx, text FROM segments ORDER BY video_id, idx"
            )
        return rows
