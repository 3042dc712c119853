"""``VoiceprintStore``: enrolled voiceprints, the anonymous voices kept across videos, speaker reports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ytingest.db.pool import Store
from ytingest.items import Unknown, Voiceprint


def _floats(value: Any) -> npt.NDArray[np.float32]:
    """A pgvector value (numpy array or ``pgvector.Vector``, by codec version) as float32."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


class VoiceprintStore(Store):
    """The ``voiceprints`` and ``unknown_speakers`` tables, and who speaks in the stored segments."""

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
            counts = {
                r["speaker"]: (r["segments"], r["videos"])
                for r in await conn.fetch(
                    "SELECT speaker, count(*) AS segments, count(DISTINCT video_id) AS videos FROM segments"
                    " WHERE speaker IS NOT NULL GROUP BY speaker"
                )
            }
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
            ],
            "unknown": [
                {"label": label, "segments": n, "videos": v}
                for label, (n, v) in sorted(counts.items())
                if label not in enrolled
            ],
        }
