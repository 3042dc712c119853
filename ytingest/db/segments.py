"""``SegmentStore``: the ``segments`` table — storing transcripts and reading them back for export.

Storing a video also gives its anonymous voices their channel's ``unknown-N`` labels, in the same
transaction as its rows (see ``_label_voices``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from ytingest.db.embeddings import register_model
from ytingest.db.pool import Store, retried
from ytingest.db.voiceprints import (
    channel_unknowns,
    count_unknowns,
    lock_channels,
    next_unknown_number,
    save_channel_unknowns,
    unknown_number,
)
from ytingest.errors import StoreError
from ytingest.items import AnonymousVoice, EmbeddedTranscript, Unknown
from ytingest.ports import VoiceNamer
from ytingest.sourcetext import clean_text, pg_text

# the namer is ``speakers.cluster.name_voices``, passed in: ``db`` sits below ``speakers``
Labels = Mapping[str, Mapping[str, str]]  # video id -> anonymous voice key -> its channel label

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
    "overlap",
)


def segment_records(
    items: Sequence[EmbeddedTranscript], embed_model: str, labels: Labels | None = None
) -> list[tuple[Any, ...]]:
    """The ``segments`` rows of ``items``, in SEGMENT_COLUMNS order, for a binary COPY; a speaker
    that is an anonymous voice's key gets its label from ``labels``."""
    labels = labels or {}
    return [
        (
            it.transcript.video.id,
            s.idx,
            s.start,
            s.end,
            pg_text(s.text),  # the ASR's own text, but a NUL in it must not stop the store
            _label(labels.get(it.transcript.video.id, {}), s.speaker),
            s.speaker_score,
            s.avg_logprob,
            vec,
            embed_model,
            s.overlap,
        )
        for it in items
        for s, vec in zip(it.transcript.segments, it.vectors, strict=True)
    ]


def _label(labels: Mapping[str, str], speaker: str | None) -> str | None:
    """The stored speaker: an anonymous voice's key becomes its label (a key that its transcript
    does not list cannot be named, so the row is stored without a speaker rather than a key)."""
    if speaker is None or not speaker.startswith("?"):
        return None if speaker is None else pg_text(speaker)
    return labels.get(speaker)


def _highest_label(item: EmbeddedTranscript) -> int:
    """The highest N of an ``unknown-N`` its segments already carry (0: none)."""
    return max((unknown_number(s.speaker) or 0 for s in item.transcript.segments if s.speaker), default=0)


def _heard_voices(item: EmbeddedTranscript) -> list[AnonymousVoice]:
    """The anonymous voices that ``item``'s segments name, in the transcript's order."""
    keys = {s.speaker for s in item.transcript.segments if s.speaker and s.speaker.startswith("?")}
    return [v for v in item.transcript.voices if v.key in keys]


async def _label_voices(
    conn: asyncpg.Connection,
    items: Sequence[EmbeddedTranscript],
    *,
    model: str,
    threshold: float,
    namer: VoiceNamer | None,
) -> dict[str, dict[str, str]]:
    """Give the items' anonymous voices their channel labels and save the channels' voices (running
    means, new ones) and label counts, under each channel's lock (taken in sorted order); return
    video -> key -> label. Segments already labelled ``unknown-N`` move the channel's count on."""
    heard = {it.transcript.video.id: _heard_voices(it) for it in items}
    highest = {it.transcript.video.id: _highest_label(it) for it in items}
    todo = [vid for vid in heard if heard[vid] or highest[vid]]
    if not todo:
        return {}
    rows = await conn.fetch(
        "SELECT id, coalesce(channel, '') AS channel FROM videos WHERE id = ANY($1::text[])", todo
    )
    channel_of = {r["id"]: r["channel"] for r in rows}
    by_channel: dict[str, list[str]] = {}
    for vid in todo:  # an unregistered video fails the store later, with its own message
        by_channel.setdefault(channel_of.get(vid, ""), []).append(vid)
    await lock_channels(conn, by_channel)
    labels: dict[str, dict[str, str]] = {}
    for channel in sorted(by_channel):
        vids = by_channel[channel]
        known = {u.label: u for u in await channel_unknowns(conn, channel, model)}
        number = max(await next_unknown_number(conn, channel), *(highest[v] + 1 for v in vids))
        changed: dict[str, Unknown] = {}
        for vid in (v for v in vids if heard[v]):
            assert namer is not None  # store_transcripts refuses voices without a namer
            labels[vid], saved = namer(list(known.values()), heard[vid], threshold, number)
            for u in saved:
                known[u.label] = changed[u.label] = u
                number = max(number, (unknown_number(u.label) or 0) + 1)
        await save_channel_unknowns(conn, changed.values(), model=model, channel=channel)
        await count_unknowns(conn, channel, number - 1)
    return labels


def _videos(ids: Sequence[str]) -> str:
    """``video a`` or ``3 videos (a, b, c)`` for messages."""
    return f"video {ids[0]}" if len(ids) == 1 else f"{len(ids)} videos ({', '.join(ids[:5])})"


class SegmentStore(Store):
    """Each stored video's segments with their embeddings, and the reads over them."""

    async def store_transcript(
        self,
        item: EmbeddedTranscript,
        *,
        asr_model: str,
        embed_model: str,
        speaker_model: str = "",
        same_voice: float = 0.8,
        namer: VoiceNamer | None = None,
    ) -> None:
        """One video: ``store_transcripts([item])``."""
        await self.store_transcripts(
            [item],
            asr_model=asr_model,
            embed_model=embed_model,
            speaker_model=speaker_model,
            same_voice=same_voice,
            namer=namer,
        )

    @retried
    async def store_transcripts(
        self,
        items: Sequence[EmbeddedTranscript],
        *,
        asr_model: str,
        embed_model: str,
        speaker_model: str = "",
        same_voice: float = 0.8,
        namer: VoiceNamer | None = None,
    ) -> None:
        """Delete the videos' old rows, binary COPY the new ones straight into ``segments`` and mark
        the videos done with their language and warning, all in one transaction: a video is stored
        whole or not at all, and storing it again replaces its rows (and its language and warning),
        never duplicates them. (No staging table: nothing to merge.)

        Anonymous voices (``transcript.voices``, named by their segments' ``?`` keys) first get their
        channel's label from ``namer``: a voice of ``speaker_model`` kept for the channel with cosine
        ≥ ``same_voice`` (its running mean is updated), else a new ``unknown-N``."""
        ids = [it.transcript.video.id for it in items]
        if any(_heard_voices(it) for it in items) and namer is None:
            raise ValueError(f"{_videos(ids)}: anonymous voices to label but no namer given (a caller's bug)")
        async with self._conn(f"store {_videos(ids)}") as conn, conn.transaction():
            labels = await _label_voices(conn, items, model=speaker_model, threshold=same_voice, namer=namer)
            records = segment_records(items, embed_model, labels)
            if records:  # the model's size is its vectors' (db/embeddings.py)
                await register_model(conn, embed_model, len(records[0][8]))
            # two workers storing one video (a claim handed on while its holder was only slow) take
            # turns here: the second replaces the first's rows instead of colliding with them
            await conn.execute(
                "SELECT 1 FROM videos WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", sorted(set(ids))
            )
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
                [clean_text(it.transcript.warning or "", 2000) for it in items],
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
                "SELECT idx, start_s, end_s, text, speaker, speaker_score, avg_logprob, overlap"
                " FROM segments WHERE video_id = $1 ORDER BY idx",
                video_id,
            )
        return dict(video), [dict(r) for r in rows]
