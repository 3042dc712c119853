"""``VoiceprintStore``: enrolled voiceprints, each channel's anonymous voices, the speakers report,
and ``VoiceEdit`` (the queries of `speakers name` / `speakers merge`).

Anonymous voices are labelled per channel when a video is stored (``db.segments``), under a
per-channel transaction lock (``lock_channels``) that the edits here take too.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from ytingest.db.pool import Store
from ytingest.items import Unknown, Voiceprint
from ytingest.sourcetext import clean_line, pg_text, public_url

SPEAKER_MAX = 200  # a speaker's name, as a user gives it (cleaned: ``sourcetext.clean_line``)
UNKNOWN_LABEL = re.compile(r"^unknown-([0-9]+)$")


def _floats(value: Any) -> npt.NDArray[np.float32]:
    """A pgvector value (numpy array or ``pgvector.Vector``, by codec version) as float32."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def unknown_number(label: str) -> int | None:
    """N of an ``unknown-N`` label; None for any other label."""
    m = UNKNOWN_LABEL.match(label)
    return int(m.group(1)) if m else None


def _in_channel(param: int) -> str:
    """SQL: video ``v`` is of channel ``$param`` ('' = no channel); uses the channel index when set."""
    return f"(v.channel = ${param} OR (${param} = '' AND v.channel IS NULL))"


async def lock_channels(conn: asyncpg.Connection, channels: Iterable[str]) -> None:
    """Take each channel's voice-labelling lock until the transaction ends, in sorted order (so two
    writers holding several channels cannot deadlock)."""
    for channel in sorted(set(channels)):
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('ytingest-unknowns:' || $1, 0))", channel
        )


async def channel_unknowns(conn: asyncpg.Connection, channel: str, model: str) -> list[Unknown]:
    """The channel's anonymous voices heard with ``model``."""
    rows = await conn.fetch(
        "SELECT label, embedding, weight FROM unknown_speakers WHERE model = $1 AND channel = $2"
        " ORDER BY label",
        model,
        channel,
    )
    return [Unknown(r["label"], _floats(r["embedding"]), r["weight"]) for r in rows]


async def next_unknown_number(conn: asyncpg.Connection, channel: str) -> int:
    """1 + the highest N of an ``unknown-N`` the channel has had (kept as a voice or stored on a
    segment: ``unknown_numbers`` keeps count, so a label freed by a rename is not given again)."""
    value = await conn.fetchval(
        """SELECT greatest((SELECT last FROM unknown_numbers WHERE channel = $1),
             (SELECT max(substring(label FROM '^unknown-([0-9]+)$')::bigint) FROM unknown_speakers
              WHERE channel = $1))""",
        channel,
    )
    return int(value or 0) + 1


async def count_unknowns(conn: asyncpg.Connection, channel: str, last: int) -> None:
    """Record that the channel's labels reach ``unknown-<last>``."""
    await conn.execute(
        """INSERT INTO unknown_numbers (channel, last) VALUES ($1, $2)
           ON CONFLICT (channel) DO UPDATE SET last = greatest(unknown_numbers.last, EXCLUDED.last)""",
        channel,
        last,
    )


async def save_channel_unknowns(
    conn: asyncpg.Connection, unknowns: Iterable[Unknown], *, model: str, channel: str
) -> None:
    """Upsert a channel's anonymous voices (label, running mean, weight)."""
    await conn.executemany(
        """INSERT INTO unknown_speakers (label, embedding, model, weight, channel) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (model, channel, label) DO UPDATE SET embedding = EXCLUDED.embedding,
             weight = EXCLUDED.weight, updated_at = now()""",
        [(u.label, u.vector, model, u.weight, channel) for u in unknowns],
    )


@dataclass(frozen=True, slots=True)
class Voice:
    """A stored voice: enrolled (``channel`` None, ``source`` 'folder' or 'named', no weight) or a
    channel's anonymous voice (``source`` 'unknown', ``weight`` = seconds of speech behind it)."""

    label: str
    model: str
    vector: npt.NDArray[np.float32] = field(repr=False)
    source: str
    channel: str | None = None
    weight: float | None = None


class VoiceEdit:
    """The queries of one `speakers name` / `merge` transaction; its channels' locks are held."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._c = conn

    async def voiceprint(self, name: str) -> Voice | None:
        r = await self._c.fetchrow("SELECT embedding, model, source FROM voiceprints WHERE name = $1", name)
        return None if r is None else Voice(name, r["model"], _floats(r["embedding"]), r["source"])

    async def unknowns(self, label: str, channel: str) -> list[Voice]:
        """The channel's anonymous voices called ``label`` (one per speaker model)."""
        rows = await self._c.fetch(
            "SELECT model, embedding, weight FROM unknown_speakers WHERE label = $1 AND channel = $2"
            " ORDER BY updated_at DESC",
            label,
            channel,
        )
        return [
            Voice(label, r["model"], _floats(r["embedding"]), "unknown", channel, r["weight"]) for r in rows
        ]

    async def save_voiceprint(self, name: str, vector: npt.NDArray[np.float32], model: str) -> None:
        """Upsert an enrolled voice; a new one is 'named', an existing one keeps its source and files."""
        await self._c.execute(
            """INSERT INTO voiceprints (name, embedding, model, files, source)
               VALUES ($1, $2, $3, '{}'::jsonb, 'named')
               ON CONFLICT (name) DO UPDATE SET embedding = EXCLUDED.embedding, updated_at = now()""",
            clean_line(name, SPEAKER_MAX),  # a user's text
            vector,
            model,
        )

    async def save_unknown(self, voice: Voice) -> None:
        assert voice.channel is not None and voice.weight is not None
        unknown = Unknown(voice.label, voice.vector, voice.weight)
        await save_channel_unknowns(self._c, [unknown], model=voice.model, channel=voice.channel)

    async def delete(self, voice: Voice) -> None:
        if voice.channel is None:
            await self._c.execute("DELETE FROM voiceprints WHERE name = $1", voice.label)
        else:
            await self._c.execute(
                "DELETE FROM unknown_speakers WHERE label = $1 AND channel = $2 AND model = $3",
                voice.label,
                voice.channel,
                voice.model,
            )

    async def relabel(self, old: str, new: str, *, channel: str | None) -> tuple[int, int]:
        """Segments of ``old`` (of the channel's videos, or all) become ``new``: (segments, videos)."""
        where = (
            "" if channel is None else f"AND video_id IN (SELECT v.id FROM videos v WHERE {_in_channel(3)})"
        )
        row = await self._c.fetchrow(
            f"""WITH u AS (UPDATE segments SET speaker = $2 WHERE speaker = $1 {where} RETURNING video_id)
                SELECT count(*) AS segments, count(DISTINCT video_id) AS videos FROM u""",
            *(
                [pg_text(old), clean_line(new, SPEAKER_MAX)]
                + ([] if channel is None else [public_url(channel)])
            ),
        )
        assert row is not None
        return int(row["segments"]), int(row["videos"])


class VoiceprintStore(Store):
    """The ``voiceprints`` and ``unknown_speakers`` tables, and who speaks in the stored segments."""

    async def voiceprints(self) -> list[Voiceprint]:
        """Every enrolled voiceprint (from voices/ and named), by name."""
        async with self._conn("read voiceprints") as conn:
            rows = await conn.fetch("SELECT name, embedding, model, files FROM voiceprints ORDER BY name")
        return [
            Voiceprint(r["name"], _floats(r["embedding"]), r["model"], json.loads(r["files"])) for r in rows
        ]

    async def save_voiceprints(self, prints: Sequence[Voiceprint], *, keep: Sequence[str]) -> None:
        """Upsert ``prints`` as voices of the voices/ folder; delete the folder's voiceprints whose
        name is not in ``keep`` (gone from voices/). Voices made by `speakers name` stay."""
        async with self._conn("save voiceprints") as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM voiceprints WHERE source = 'folder' AND NOT (name = ANY($1::text[]))",
                [clean_line(k, SPEAKER_MAX) for k in keep],
            )
            await conn.executemany(
                """INSERT INTO voiceprints (name, embedding, model, files, source)
                   VALUES ($1, $2, $3, $4::jsonb, 'folder')
                   ON CONFLICT (name) DO UPDATE SET embedding = EXCLUDED.embedding, model = EXCLUDED.model,
                     files = EXCLUDED.files, source = 'folder', updated_at = now()""",
                [
                    (
                        clean_line(p.name, SPEAKER_MAX),
                        p.vector,
                        p.model,
                        json.dumps(dict(p.files), sort_keys=True),
                    )
                    for p in prints
                ],
            )

    async def unknown_channels(self, label: str) -> list[str]:
        """The channels that keep an anonymous voice called ``label``."""
        async with self._conn("read unknown speakers") as conn:
            rows = await conn.fetch(
                "SELECT DISTINCT channel FROM unknown_speakers WHERE label = $1 ORDER BY channel", label
            )
        return [r["channel"] for r in rows]

    @asynccontextmanager
    async def editing_voices(self, channels: Iterable[str]) -> AsyncIterator[VoiceEdit]:
        """One transaction over the voices, holding the labelling locks of ``channels``."""
        async with self._conn("edit voices") as conn, conn.transaction():
            await lock_channels(conn, channels)
            yield VoiceEdit(conn)

    async def speakers_report(self) -> dict[str, Any]:
        """Enrolled voices (with their source) and each channel's anonymous voices, with how many
        segments and videos each has."""
        async with self._conn("speakers") as conn:
            counted = await conn.fetch(
                """SELECT coalesce(v.channel, '') AS channel, s.speaker, count(*) AS segments,
                     count(DISTINCT s.video_id) AS videos
                   FROM segments s JOIN videos v ON v.id = s.video_id
                   WHERE s.speaker IS NOT NULL GROUP BY 1, 2"""
            )
            kept = await conn.fetch("SELECT DISTINCT channel, label FROM unknown_speakers")
            prints = await conn.fetch(
                "SELECT name, model, files, source, updated_at FROM voiceprints ORDER BY name"
            )
        enrolled = {p["name"] for p in prints}
        totals: dict[str, list[int]] = {}
        unknown: dict[tuple[str, str], tuple[int, int]] = {(k["channel"], k["label"]): (0, 0) for k in kept}
        for r in counted:
            if r["speaker"] in enrolled:
                t = totals.setdefault(r["speaker"], [0, 0])
                t[0] += r["segments"]
                t[1] += r["videos"]
            else:
                unknown[(r["channel"], r["speaker"])] = (r["segments"], r["videos"])
        order = sorted(
            unknown, key=lambda k: (k[0], unknown_number(k[1]) is None, unknown_number(k[1]) or 0, k[1])
        )
        return {
            "enrolled": [
                {
                    "name": p["name"],
                    "model": p["model"],
                    "source": p["source"],
                    "clips": sorted(json.loads(p["files"])),
                    "segments": totals.get(p["name"], [0, 0])[0],
                    "videos": totals.get(p["name"], [0, 0])[1],
                    "updated_at": p["updated_at"].isoformat(),
                }
                for p in prints
            ],
            "unknown": [
                dict(
                    label=label,
                    channel=channel,
                    segments=unknown[channel, label][0],
                    videos=unknown[channel, label][1],
                )
                for channel, label in order
            ],
        }
