"""``SegmentStore``: the ``segments`` table — storing transcripts, the HNSW index, search, export."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ytingest.db.pool import Store, retried
from ytingest.errors import StoreError
from ytingest.items import EmbeddedTranscript, SearchHit

SEGMENT_COLUMNS = (
    "video_id",
    "idx",
    "start_s",
    "end_s",
    "text",
    "speaker",
    "speaker_score",
    "avg_logprob",
    "embedding",
    "embed_model",
)
_HNSW_INDEX = (
    "CREATE INDEX IF NOT EXISTS segments_embedding_hnsw ON segments USING hnsw (embedding vector_cosine_ops)"
)


def segment_records(items: Sequence[EmbeddedTranscript], embed_model: str) -> list[tuple[Any, ...]]:
    """The ``segments`` rows of ``items``, in SEGMENT_COLUMNS order, for a binary COPY."""
    return [
        (
            it.transcript.video.id,
            s.idx,
            s.start,
            s.end,
            s.text,
            s.speaker,
            s.speaker_score,
            s.avg_logprob,
            vec,
            embed_model,
        )
        for it in items
        for s, vec in zip(it.transcript.segments, it.vectors, strict=True)
    ]


def timestamp_url(webpage_url: str, seconds: float) -> str:
    """A link that opens the video at ``seconds`` (YouTube ``t=``, else a media fragment)."""
    t = max(0, int(seconds))
    if "youtube.com/" in webpage_url or "youtu.be/" in webpage_url:
        return f"{webpage_url}{'&' if '?' in webpage_url else '?'}t={t}s"
    return f"{webpage_url.split('#', 1)[0]}#t={t}"


def _videos(ids: Sequence[str]) -> str:
    """``video a`` or ``3 videos (a, b, c)`` for messages."""
    return f"video {ids[0]}" if len(ids) == 1 else f"{len(ids)} videos ({', '.join(ids[:5])})"


class SegmentStore(Store):
    """Each stored video's segments with their embeddings, and the reads over them."""

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
                ids,
                [len(it.transcript.segments) for it in items],
                [it.transcript.audio_seconds for it in items],
                asr_model,
                embed_model,
            )
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
                vector,
                limit,
                speaker,
            )
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
