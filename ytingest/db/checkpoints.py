"""``CheckpointStore``: the ``checkpoints`` table — each finished window of a video in flight, so a
re-run (or another worker) resumes after the last one instead of transcribing the video again.

One row per (video, window, ASR model): the window's segments (with their words, when they carry
them), its anonymous voices and its segments' embeddings, made with the row's embed and speaker
models. Rows are read back only for the same three models, only in an unbroken run from window 0,
and only when written after the video was last stored (``videos.done_at``): a row left behind by
a stored video is never used. The store deletes a video's rows once its segments are committed.

Segments and voices are JSON in a ``text`` column (``json.dumps`` escapes every control
character, so a NUL in the ASR's text travels safely); embeddings are float32 bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ytingest.db.pool import Store
from ytingest.items import AnonymousVoice, Checkpoint, Segment, VideoRef, WindowResult, Word
from ytingest.logs import get_logger

log = get_logger()

_COLUMNS = (
    "video_id",
    "window_index",
    "asr_model",
    "embed_model",
    "speaker_model",
    "last",
    "seconds",
    "language",
    "probability",
    "warning",
    "segments",
    "voices",
    "dim",
    "vectors",
)


def _plain(value: Any) -> Any:
    """What ``json.dumps`` cannot write itself: numpy scalars (a speaker score, a weight)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_plain)


def _segment_json(s: Segment) -> dict[str, Any]:
    return {
        "idx": s.idx,
        "start": s.start,
        "end": s.end,
        "text": s.text,
        "avg_logprob": s.avg_logprob,
        "speaker": s.speaker,
        "speaker_score": s.speaker_score,
        "overlap": s.overlap,
        "words": [[w.start, w.end, w.text] for w in s.words],
    }


def _segment(d: dict[str, Any]) -> Segment:
    words = tuple(Word(float(a), float(b), str(t)) for a, b, t in d["words"])
    return Segment(
        int(d["idx"]),
        float(d["start"]),
        float(d["end"]),
        str(d["text"]),
        float(d["avg_logprob"]),
        d["speaker"],
        d["speaker_score"],
        bool(d["overlap"]),
        words,
    )


def _voice_json(v: AnonymousVoice) -> dict[str, Any]:
    return {"key": v.key, "weight": v.weight, "vector": v.vector.astype(np.float32).tolist()}


def _voice(d: dict[str, Any]) -> AnonymousVoice:
    return AnonymousVoice(str(d["key"]), np.asarray(d["vector"], dtype=np.float32), float(d["weight"]))


def checkpoint_record(
    video_id: str, c: Checkpoint, *, asr_model: str, embed_model: str, speaker_model: str
) -> tuple[Any, ...]:
    """The ``checkpoints`` row of one window, in _COLUMNS order."""
    r = c.result
    vectors = np.ascontiguousarray(c.vectors, dtype=np.float32)
    if len(vectors) != len(r.segments):
        raise ValueError(
            f"window {r.index} of {video_id}: {len(vectors)} rows for {len(r.segments)} segments"
        )
    return (
        video_id,
        r.index,
        asr_model,
        embed_model,
        speaker_model,
        r.last,
        float(r.seconds),
        r.language,
        None if r.probability is None else float(r.probability),
        r.warning,
        _dumps([_segment_json(s) for s in r.segments]),
        _dumps([_voice_json(v) for v in r.voices]),
        vectors.shape[1] if vectors.ndim == 2 else 0,
        vectors.tobytes(),
    )


def read_checkpoint(row: Any) -> Checkpoint:
    """A stored row back as a ``Checkpoint`` (ValueError/KeyError/TypeError if it is damaged)."""
    segments = tuple(_segment(d) for d in json.loads(row["segments"]))
    voices = tuple(_voice(d) for d in json.loads(row["voices"]))
    dim = int(row["dim"])
    vectors = np.frombuffer(row["vectors"], dtype=np.float32).copy()
    vectors = vectors.reshape(len(segments), dim) if dim else vectors.reshape(len(segments), 0)
    result = WindowResult(
        int(row["window_index"]),
        bool(row["last"]),
        segments,
        float(row["seconds"]),
        str(row["language"]),
        row["probability"],
        row["warning"],
        voices,
    )
    return Checkpoint(result, vectors)


class CheckpointStore(Store):
    """The finished windows of videos not yet stored (the engine's ``stages/resume.py`` uses them)."""

    async def save_checkpoints(
        self,
        items: Sequence[tuple[str, Checkpoint]],
        *,
        asr_model: str,
        embed_model: str,
        speaker_model: str = "",
    ) -> None:
        """Keep (video id, window) pairs in one statement; a window kept before (for the same ASR
        model) is replaced. Not retried: a checkpoint is worth a try, not a wait."""
        if not items:
            return
        records = [
            checkpoint_record(
                vid, c, asr_model=asr_model, embed_model=embed_model, speaker_model=speaker_model
            )
            for vid, c in items
        ]
        columns = list(zip(*records, strict=True))
        async with self._conn(f"checkpoint {len(items)} windows") as conn:
            await conn.execute(
                """INSERT INTO checkpoints (video_id, window_index, asr_model, embed_model, speaker_model,
                       last, seconds, language, probability, warning, segments, voices, dim, vectors)
                   SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[],
                       $6::bool[], $7::float8[], $8::text[], $9::float8[], $10::text[], $11::text[],
                       $12::text[], $13::int[], $14::bytea[])
                   ON CONFLICT (video_id, window_index, asr_model) DO UPDATE SET
                       embed_model = EXCLUDED.embed_model, speaker_model = EXCLUDED.speaker_model,
                       last = EXCLUDED.last, seconds = EXCLUDED.seconds, language = EXCLUDED.language,
                       probability = EXCLUDED.probability, warning = EXCLUDED.warning,
                       segments = EXCLUDED.segments, voices = EXCLUDED.voices, dim = EXCLUDED.dim,
                       vectors = EXCLUDED.vectors, created_at = now()""",
                *[list(c) for c in columns],
            )

    async def load_checkpoints(
        self, video_id: str, *, asr_model: str, embed_model: str, speaker_model: str = ""
    ) -> tuple[VideoRef | None, list[Checkpoint]]:
        """The video (None: not registered) and its usable windows: those of these three models,
        written after it was last stored, from window 0 on without a gap (a damaged row ends the
        run). Rows of this ASR model past that run are deleted: the video is decoded again from
        there and its new windows may be cut elsewhere."""
        async with self._conn(f"read checkpoints of {video_id}") as conn:
            video = await conn.fetchrow(
                "SELECT id, url, title, duration, webpage_url, coalesce(channel, '') AS channel, done_at"
                " FROM videos WHERE id = $1",
                video_id,
            )
            if video is None:
                return None, []
            rows = await conn.fetch(
                """SELECT c.* FROM checkpoints c JOIN videos v ON v.id = c.video_id
                   WHERE c.video_id = $1 AND c.asr_model = $2 AND c.embed_model = $3
                     AND c.speaker_model = $4 AND c.created_at > coalesce(v.done_at, '-infinity')
                   ORDER BY c.window_index""",
                video_id,
                asr_model,
                embed_model,
                speaker_model,
            )
            kept: list[Checkpoint] = []
            for row in rows:
                if row["window_index"] != len(kept) or (kept and kept[-1].result.last):
                    break
                try:
                    kept.append(read_checkpoint(row))
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning(
                        "checkpoint_unreadable",
                        video_id=video_id,
                        window=row["window_index"],
                        reason=str(exc),
                    )
                    break
            await conn.execute(
                "DELETE FROM checkpoints WHERE video_id = $1 AND asr_model = $2 AND window_index >= $3",
                video_id,
                asr_model,
                len(kept),
            )
        ref = VideoRef(
            video["id"],
            video["url"],
            video["title"],
            video["duration"],
            video["channel"],
            video["webpage_url"],
        )
        return ref, kept

    async def delete_checkpoints(self, video_ids: Sequence[str]) -> None:
        """Forget the windows of videos now stored (any model's)."""
        if video_ids:
            async with self._conn("delete checkpoints") as conn:
                await conn.execute(
                    "DELETE FROM checkpoints WHERE video_id = ANY($1::text[])", list(video_ids)
                )

    async def checkpointed(self, video_id: str) -> list[dict[str, Any]]:
        """The video's rows (window, ASR model, last, seconds), in order: for ``status`` and tests."""
        async with self._conn("list checkpoints") as conn:
            rows = await conn.fetch(
                "SELECT window_index, asr_model, last, seconds, created_at FROM checkpoints"
                " WHERE video_id = $1 ORDER BY asr_model, window_index",
                video_id,
            )
        return [dict(r) for r in rows]
