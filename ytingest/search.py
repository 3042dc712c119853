"""What a search asks for (``SearchQuery``), how two rankings are fused, and how hits are grouped.

The SQL lives in ``db/search.py``; the CLI, the library (``Engine.search``) and the web app's
``/api/search`` all build one ``SearchQuery`` and get the same ``SearchHit`` list back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal, get_args

from ytingest.errors import ConfigError
from ytingest.items import SearchHit

Mode = Literal["hybrid", "semantic", "keyword"]
MODES: tuple[str, ...] = get_args(Mode)
RRF_K = 60  # reciprocal-rank fusion constant (Cormack et al. 2009): 1 / (k + rank)
_RELATIVE = re.compile(r"^(\d+)\s*([dwmy])$")
_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}
_PHRASE = re.compile(r'"([^"]+)"')
_WORD = re.compile(r"[\w][\w.'-]*", re.UNICODE)


def parse_day(value: str, *, today: date | None = None) -> date:
    """``YYYY-MM-DD``, or a relative ``7d`` / ``2w`` / ``3m`` / ``1y`` back from today (UTC)."""
    text = value.strip().lower()
    if m := _RELATIVE.match(text):
        base = today or datetime.now(UTC).date()
        return base - timedelta(days=int(m.group(1)) * _DAYS[m.group(2)])
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"not a date: {value!r} (use YYYY-MM-DD or a relative form like 7d)") from None


def phrases(text: str) -> list[str]:
    """The quoted phrases of a query: each must appear, as written (case aside), in a hit."""
    return [p.strip() for p in _PHRASE.findall(text) if p.strip()]


def terms(text: str) -> list[str]:
    """The words and phrases of a query, longest first, for highlighting (quotes dropped)."""
    found = phrases(text) + _WORD.findall(_PHRASE.sub(" ", text))
    unique = {t.lower(): t for t in found if len(t) > 1}
    return sorted(unique.values(), key=len, reverse=True)


def any_words(text: str) -> str:
    """The query rewritten for ``websearch_to_tsquery`` so a segment matches on any of its words or
    quoted phrases (``a or "b c" or d``); ``-excluded`` words are left to ``excluded``."""
    words = [w for w in _PHRASE.sub(" ", text).split() if not w.startswith("-") and w.lower() != "or"]
    return " or ".join([f'"{p}"' for p in phrases(text)] + words)


def excluded(text: str) -> str:
    """The query's ``-word`` exclusions (``websearch_to_tsquery`` syntax), or "" when none."""
    return " ".join(w for w in _PHRASE.sub(" ", text).split() if w.startswith("-") and len(w) > 1)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """One search: the text, the ranking mode, and filters that every mode applies."""

    text: str
    mode: Mode = "hybrid"
    limit: int = 10
    speaker: str | None = None
    channel: str | None = None
    video: str | None = None
    since: date | None = None
    until: date | None = None
    min_score: float | None = None
    phrases: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ConfigError("an empty query: give some words to search for")
        if self.mode not in MODES:
            raise ConfigError(f"unknown search mode {self.mode!r}: use one of {', '.join(MODES)}")
        if not 1 <= self.limit <= 1000:
            raise ConfigError("the search limit must be between 1 and 1000")
        if self.since and self.until and self.since > self.until:
            raise ConfigError(f"--since {self.since} is after --until {self.until}")
        object.__setattr__(self, "phrases", tuple(phrases(self.text)))

    @property
    def candidates(self) -> int:
        """How deep each ranking is read before fusing: deep enough that the fused top-N is stable."""
        return max(50, 5 * self.limit)


def fuse(rankings: Sequence[Sequence[tuple[str, int]]], limit: int) -> list[tuple[tuple[str, int], float]]:
    """Reciprocal-rank fusion of ranked (video_id, idx) lists; the fused score is scaled so that
    first place in every list scores 1.0."""
    scores: dict[tuple[str, int], float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
    best = len(rankings) / (RRF_K + 1)
    ordered = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)[:limit]
    return [(key, score / best) for key, score in ordered]


@dataclass(frozen=True, slots=True)
class VideoHits:
    """The hits of one video, best first; a group ranks by its best hit."""

    video_id: str
    title: str
    hits: tuple[SearchHit, ...]

    @property
    def best(self) -> SearchHit:
        return self.hits[0]

    def to_dict(self) -> dict[str, object]:
        return {"video_id": self.video_id, "title": self.title, "hits": [h.to_dict() for h in self.hits]}


def group_by_video(hits: Iterable[SearchHit]) -> list[VideoHits]:
    """Hits grouped per video; groups in the order of their best hit, hits in rank order."""
    groups: dict[str, list[SearchHit]] = {}
    for hit in hits:
        groups.setdefault(hit.video_id, []).append(hit)
    return [VideoHits(vid, found[0].title, tuple(found)) for vid, found in groups.items()]
