"""Render a stored video's segments as JSON, SRT or WebVTT."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

FORMATS = ("json", "srt", "vtt")


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _day(value: date | str | None) -> str | None:
    return value.isoformat() if isinstance(value, date) else value


def _about(video: Mapping[str, Any]) -> dict[str, Any]:
    """The video's fields each JSON row repeats."""
    probability = video.get("language_probability")
    return {
        "video_id": video["id"],
        "upload_date": _day(video.get("upload_date")),
        "language": video.get("language"),
        "language_probability": None if probability is None else round(probability, 4),
        "warning": video.get("warning"),
    }


def _caption(row: dict[str, Any]) -> str:
    return f"[{row['speaker']}] {row['text']}" if row.get("speaker") else str(row["text"])


def render(rows: Sequence[dict[str, Any]], fmt: str, *, video: Mapping[str, Any] | None = None) -> str:
    """``rows`` as returned by ``Database.video_segments``, in order. ``video``: the video's row from
    the same call; JSON rows then also carry its ``video_id``, ``upload_date`` (``YYYY-MM-DD`` or
    null), ``language``, ``language_probability`` (null: set, not detected) and ``warning`` (null, or
    what the stored video lacks). SRT and WebVTT have no place for them."""
    if fmt == "json":
        about = {} if video is None else _about(video)
        out = [
            {
                **about,
                "idx": r["idx"],
                "start": round(r["start_s"], 3),
                "end": round(r["end_s"], 3),
                "text": r["text"],
                "speaker": r["speaker"],
                "speaker_score": r["speaker_score"],
                "overlap": r.get("overlap", False),
                "avg_logprob": r["avg_logprob"],
            }
            for r in rows
        ]
        return json.dumps(out, indent=2, ensure_ascii=False) + "\n"
    if fmt == "srt":
        return "".join(
            f"{n}\n{_clock(r['start_s'], ',')} --> {_clock(r['end_s'], ',')}\n{_caption(r)}\n\n"
            for n, r in enumerate(rows, start=1)
        )
    if fmt == "vtt":
        cues = "".join(
            f"{_clock(r['start_s'], '.')} --> {_clock(r['end_s'], '.')}\n{_caption(r)}\n\n" for r in rows
        )
        return "WEBVTT\n\n" + cues
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
