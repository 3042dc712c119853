"""``SegmentStore``: the ``segments`` table — storing transcripts and reading them back for export."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ytingest.db.pool import Store, retried
from ytingest.errors import StoreError
from ytingest.items import EmbeddedTranscript

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
        the videos done with their language and warning, all in one transaction: a video is stored
        whole or not at all, and storing it again replaces its rows (and its language and warning),
        never duplicates them. (No staging table: nothing to merge.)"""
        records = segment_records(items, embed_model)
        ids = [it.transcript.video.id for it in items]
        async with self._conn(f"store {_videos(ids)}") as conn, conn.transaction():
            await conn.execute("DELETE FROM segments WHERE video_id = ANY($1::text[])", ids)
            if records:
                await conn.copy_records_to_table("segments", records=records, columns=SEGMENT_COLUMNS)
            status = await conn.execute(
                """UPDATE videos v SET status = 'done', error = NULL, error_stage = NULL,
                     segments = u.n, audio_seconds = u.seconds, asr_model = $4, embed_model = $5,
                     language = NULLIF(u.language, ''), language_probability = u.probability,
                     warning = NULLIF(u.warning, ''),
                     done_at = now(), updated_at = now()
                   FROM unnest($1::text[], $2::int[], $3::real[], $6::text[], $7::real[], $8::text[])
                     AS u(id, n, seconds, language, probability, warning)
                   WHERE v.id = u.id""",
                ids,
                [len(it.transcript.segments) for it in items],
                [it.transcript.audio_seconds for it in items],
                asr_model,
                embed_model,
                [it.transcript.language for it in items],
                [it.transcript.language_probability for it in items],
                [it.transcript.warning for it in items],
            )
            if status != f"UPDATE {len(set(ids))}":
                raise StoreError(f"{_videos(ids)}: not every video is registered")

    async def video_segments(self, video_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """A stored video's row and its segments in order, or None if it is not stored."""
        async with self._conn("export") as conn:
            video = await conn.fetchrow(
                "SELECT id, title, webpage_url, url, duration, status, upload_date, channel, channel_name,"
                " language, language_probability, warning FROM videos WHERE id = $1",
                video_id,
            )
            if video is None or video["status"] != "done":
                return None
            rows = await conn.fetch(
                "SELECT idx, start_s, end_s, text, speaker, speaker_score, avg_logprob"
                " FROM segments WHERE video_id = $1 ORDER BY idx",
                video_id,
            )
        return dict(video), [dict(r) for r in rows]
