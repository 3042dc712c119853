"""``UpgradeStore``: the queries of ``reprocess`` and ``delete`` (docs/UPGRADES.md).

Re-embedding replaces one video's vectors (and the model recorded for them) in one transaction;
re-transcribing goes through the ordinary store, which replaces a video's rows in one transaction.
Deleting takes videos out with everything that names them: segments, claims and checkpoints
(``ON DELETE CASCADE`` or an explicit DELETE), their channel's anonymous voices heard only in
them, and the ledger rows; the caller removes their kept audio files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ytingest.db.embeddings import all_models, prune_models, register_model
from ytingest.db.pool import Store, retried
from ytingest.db.voiceprints import lock_channels
from ytingest.errors import StoreError
from ytingest.items import VideoRef
from ytingest.sourcetext import pg_text, public_url


@dataclass(frozen=True, slots=True)
class Deleted:
    """What ``delete_videos`` removed."""

    videos: list[str]
    segments: int
    voices: list[str] = field(default_factory=list)  # "channel label" of the voices removed
    channel: str | None = None  # the channel row itself, when a whole channel went


class UpgradeStore(Store):
    """Stored videos chosen for reprocessing, their vectors replaced, and videos deleted."""

    @retried
    async def stored_refs(
        self, *, video: str | None = None, channel: str | None = None
    ) -> list[tuple[VideoRef, str | None, str | None]]:
        """The stored (done) videos of one id, one channel, or all (neither given), oldest first,
        each with the ASR and embedding models recorded for it."""
        async with self._conn("read stored videos") as conn:
            rows = await conn.fetch(
                "SELECT id, url, title, duration, channel, webpage_url, asr_model, embed_model FROM videos"
                " WHERE status = 'done' AND ($1::text IS NULL OR id = $1)"
                " AND ($2::text IS NULL OR channel = $2) ORDER BY done_at, id",
                None if video is None else pg_text(video),
                None if channel is None else pg_text(public_url(channel)),
            )
        return [
            (
                VideoRef(r["id"], r["url"], r["title"], r["duration"], r["channel"] or "", r["webpage_url"]),
                r["asr_model"],
                r["embed_model"],
            )
            for r in rows
        ]

    @retried
    async def segment_texts(self, video_id: str) -> list[tuple[int, str]]:
        """A stored video's segments as (idx, text), in order."""
        async with self._conn("read segment texts") as conn:
            rows = await conn.fetch(
                "SELECT idx, text FROM segments WHERE video_id = $1 ORDER BY idx", video_id
            )
        return [(r["idx"], r["text"]) for r in rows]

    @retried
    async def replace_vectors(
        self, video_id: str, idx: Sequence[int], vectors: npt.NDArray[np.float32], *, embed_model: str
    ) -> None:
        """Put ``embed_model``'s vectors on a video's segments in place of the old model's, all in one
        transaction (a binary COPY into a scratch table, then one UPDATE). The segments must be the
        ones that were read: a video re-transcribed meanwhile is refused, not half re-embedded."""
        if len(idx) != len(vectors):
            raise ValueError("one vector per segment")
        async with self._conn(f"re-embed video {video_id}") as conn, conn.transaction():
            await conn.execute("SELECT 1 FROM videos WHERE id = $1 FOR UPDATE", video_id)
            stored = await conn.fetch("SELECT idx FROM segments WHERE video_id = $1 ORDER BY idx", video_id)
            if [r["idx"] for r in stored] != sorted(idx):
                raise StoreError(
                    f"video {video_id}: its segments changed while it was re-embedded; run again"
                )
            if len(idx):
                await register_model(conn, embed_model, int(vectors.shape[1]))
                await conn.execute(
                    "CREATE TEMP TABLE new_vectors (idx integer, embedding vector) ON COMMIT DROP"
                )
                records = [(i, v) for i, v in zip(idx, vectors, strict=True)]
                await conn.copy_records_to_table("new_vectors", records=records, columns=("idx", "embedding"))
                await conn.execute(
                    "UPDATE segments s SET embedding = n.embedding, embed_model = $2"
                    " FROM new_vectors n WHERE s.video_id = $1 AND s.idx = n.idx",
                    video_id,
                    embed_model,
                )
            await conn.execute(
                "UPDATE videos SET embed_model = $2, updated_at = now() WHERE id = $1", video_id, embed_model
            )

    @retried
    async def prune_embed_models(self) -> list[str]:
        """Forget the embedding models no segment uses any more, and drop their indexes."""
        async with self._conn("prune embedding models") as conn, conn.transaction():
            return await prune_models(conn)

    @retried
    async def embed_models_report(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Each (embedding model, ASR model) pair of the stored videos: its vector size, how many
        videos and segments, and which videos; only ``channel``'s when one is named."""
        channel = None if channel is None else pg_text(public_url(channel))
        async with self._conn("embedding models") as conn:
            sizes = {m.name: m.dim for m in await all_models(conn)}
            rows = await conn.fetch(
                """SELECT embed_model, asr_model, count(*) AS videos, sum(segments) AS segments,
                          array_agg(id ORDER BY id) AS ids
                   FROM videos WHERE status = 'done' AND ($1::text IS NULL OR channel = $1)
                   GROUP BY embed_model, asr_model ORDER BY embed_model, asr_model""",
                channel,
            )
        return [
            {
                "embed_model": r["embed_model"],
                "dim": sizes.get(r["embed_model"] or ""),
                "asr_model": r["asr_model"],
                "videos": r["videos"],
                "segments": int(r["segments"] or 0),
                "video_ids": list(r["ids"]),
            }
            for r in rows
        ]

    @retried
    async def delete_videos(self, *, video: str | None = None, channel: str | None = None) -> Deleted:
        """Remove one video, or every video of a channel (and the channel), in one transaction:
        segments, claims, checkpoints, ledger rows, and the channel's anonymous voices that no
        remaining segment carries (a kept voice's running mean cannot lose one video's share:
        that share was never stored; docs/UPGRADES.md)."""
        if (video is None) == (channel is None):
            raise ValueError("delete one video or one channel")
        url = None if channel is None else pg_text(public_url(channel))
        async with self._conn("delete videos") as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, coalesce(channel, '') AS channel FROM videos"
                " WHERE ($1::text IS NULL OR id = $1) AND ($2::text IS NULL OR channel = $2) ORDER BY id",
                None if video is None else pg_text(video),
                url,
            )
            ids = [r["id"] for r in rows]
            channels = sorted({r["channel"] for r in rows} | ({url} if url is not None else set()))
            await lock_channels(conn, channels)  # as a store labelling voices takes it
            await conn.execute("SELECT 1 FROM videos WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", ids)
            if await conn.fetchval("SELECT to_regclass('checkpoints') IS NOT NULL"):
                await conn.execute("DELETE FROM checkpoints WHERE video_id = ANY($1::text[])", ids)
            status = await conn.execute("DELETE FROM segments WHERE video_id = ANY($1::text[])", ids)
            segments = int(status.split()[-1])
            await conn.execute("DELETE FROM videos WHERE id = ANY($1::text[])", ids)  # claims cascade
            voices = await conn.fetch(
                """DELETE FROM unknown_speakers u WHERE u.channel = ANY($1::text[]) AND NOT EXISTS (
                       SELECT 1 FROM segments s JOIN videos v ON v.id = s.video_id
                       WHERE s.speaker = u.label AND coalesce(v.channel, '') = u.channel)
                   RETURNING u.channel, u.label""",
                channels,
            )
            gone = None
            if url is not None:
                await conn.execute("DELETE FROM unknown_numbers WHERE channel = $1", url)
                if await conn.execute("DELETE FROM channels WHERE url = $1", url) == "DELETE 1":
                    gone = url
            await prune_models(conn)
        return Deleted(ids, segments, sorted(f"{r['channel']} {r['label']}".strip() for r in voices), gone)
