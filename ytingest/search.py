"""What a search asks for (``SearchQuery``), how two rankings are fused, and how hits are grouped.

The SQL lives in ``db/search.py``; the CLI, the library (``Engine.search``) and the web app's
``/api/search`` all build one ``SearchQuery`` and get the same ``SearchHit`` list back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from ytingest.errors import ConfigError
from ytingest.items import SearchHit
from ytingest.languages import config_for_lang

Mode = Literal["hybrid", "semantic", "keyword"]
MODES: tuple[str, ...] = get_args(Mode)
RRF_K = 60  # reciprocal-rank fusion constant (Cormack et al. 2009): 1 / (k + rank)
_RELATIVE = re.compile(r"^(\d+)\s*([dwmy])$")
_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}
# a query's parts: a quoted phrase or a bare word, either one with a leading "-" (excluded)
_PART = re.compile(r'(-?)"([^"]*)"|(\S+)')
_WORD = re.compile(r"[\w][\w.'-]*", re.UNICODE)
# left out of highlighting only (full-text search drops English stop words by itself)
_YOUTUBE_HOSTS = ("youtube.com", "youtu.be", "youtube-nocookie.com")
_STOP = frozenset("a an and are as at be by for from how in is it of on or that the to was what with".split())


def parse_day(value: str, *, today: date | None = None) -> date:
    """``YYYY-MM-DD``, or a relative ``7d`` / ``2w`` / ``3m`` / ``1y`` back from today (UTC)."""
    text = value.strip().lower()
    try:
        if m := _RELATIVE.match(text):
            base = today or datetime.now(UTC).date()
            return base - timedelta(days=int(m.group(1)) * _DAYS[m.group(2)])
        return date.fromisoformat(text)
    except (ValueError, OverflowError):
        raise ConfigError(f"not a date: {value!r} (use YYYY-MM-DD or a relative form like 7d)") from None


@dataclass(frozen=True, slots=True)
class QueryParts:
    """A query split the way ``websearch_to_tsquery`` reads it: quoted phrases, bare words, and the
    ``-word`` / ``-"phrase"`` exclusions (``or`` is an operator, not a word)."""

    phrases: tuple[str, ...]
    words: tuple[str, ...]
    excluded: tuple[str, ...]  # in websearch syntax: -word, -"a phrase"

    @classmethod
    def of(cls, text: str) -> QueryParts:
        phrases: list[str] = []
        words: list[str] = []
        excluded: list[str] = []
        for m in _PART.finditer(text):
            minus, phrase, bare = m.group(1), (m.group(2) or "").strip(), m.group(3)
            if bare is None and phrase:
                excluded.append(f'-"{phrase}"') if minus else phrases.append(phrase)
            elif bare is not None and bare.startswith("-") and len(bare) > 1:
                excluded.append(bare)
            elif bare is not None and not bare.startswith("-") and bare.lower() != "or":
                words.append(bare)
        return cls(tuple(phrases), tuple(words), tuple(excluded))

    def any_words(self) -> str:
        """For ``websearch_to_tsquery``: a segment matches on any word or phrase (``a or "b c"``)."""
        return " or ".join([f'"{p}"' for p in self.phrases] + list(self.words))

    def meaning(self) -> str:
        """What the query means, for the embedding: its phrases and words, exclusions left out."""
        return " ".join([*self.phrases, *self.words])


def terms(text: str) -> list[str]:
    """The phrases and words to highlight, longest first: no exclusions, operators or stop words."""
    parts = QueryParts.of(text)
    found = list(parts.phrases) + [w for word in parts.words for w in _WORD.findall(word)]
    unique = {t.lower(): t for t in found if len(t) > 1 and t.lower() not in _STOP}
    return sorted(unique.values(), key=len, reverse=True)


def is_youtube(url: str) -> bool:
    """Whether ``url`` opens on YouTube (which seeks with ``t=``); other sources play in the page."""
    host = (urlsplit(url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in _YOUTUBE_HOSTS)


def timestamp_url(webpage_url: str, seconds: float) -> str:
    """A link that opens the video at ``seconds`` (YouTube ``t=``, else a media fragment)."""
    t = max(0, int(seconds))
    if is_youtube(webpage_url):
        return f"{webpage_url}{'&' if '?' in webpage_url else '?'}t={t}s"
    return f"{webpage_url.split('#', 1)[0]}#t={t}"


def phrase_pattern(phrase: str) -> str:
    """A PostgreSQL regular expression for ``phrase`` as whole words, any case: the words in order,
    separated by spaces or hyphens ("penny farthing" finds "penny-farthing", "arter" not "starter")."""
    words = [re.escape(w) for w in re.split(r"[\s-]+", phrase) if w]
    return r"\m" + r"[\s-]+".join(words) + r"\M"


def whole_number(value: str) -> int:
    """A search option's whole number (``--limit``, ``limit=``); ConfigError: one line."""
    try:
        return int(value.strip())
    except ValueError:
        raise ConfigError(f"must be a whole number, not {value!r}") from None


def finite_number(value: str) -> float:
    """A search option's finite number (``--min-score``, ``min_score=``); ConfigError: one line."""
    try:
        result = float(value.strip())
    except ValueError:
        raise ConfigError(f"must be a number, not {value!r}") from None
    if not math.isfinite(result):
        raise ConfigError(f"must be a finite number, not {value!r}")
    return result


@dataclass(frozen=True, slots=True)
class QueryOption:
    """How a ``SearchQuery`` field is given as text: ``--name`` on the command line, ``name=`` in
    the web's query string. Both turn the text into the field's value with ``parse`` (a ConfigError
    of one line when it cannot), then ``SearchQuery`` checks the whole query."""

    help: str
    parse: Callable[[str], object] = str
    choices: tuple[str, ...] = ()


def _option(
    help: str, parse: Callable[[str], object] = str, *, choices: tuple[str, ...] = (), default: object = None
) -> Any:
    """A ``SearchQuery`` field that is one of its options."""
    return field(default=default, metadata={"option": QueryOption(help, parse, choices)})


def query_options() -> dict[str, QueryOption]:
    """``SearchQuery``'s options by field name, in declaration order (the CLI's flags, the web's
    parameters)."""
    return {f.name: f.metadata["option"] for f in fields(SearchQuery) if "option" in f.metadata}


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """One search: the text, the ranking mode, and filters that every mode applies. The fields with
    a ``QueryOption`` are the search's options, declared here once for the CLI and the web."""

    text: str
    mode: Mode = _option("how hits are ranked", choices=MODES, default="hybrid")
    limit: int = _option("how many hits, 1-1000", whole_number, default=10)
    speaker: str | None = _option("only segments of this speaker")
    channel: str | None = _option("only videos of this channel URL")
    video: str | None = _option("only this video id")
    since: date | None = _option("uploaded on or after: YYYY-MM-DD or 7d, 2w, 3m", parse_day)
    until: date | None = _option("uploaded on or before: YYYY-MM-DD or 7d, 2w, 3m", parse_day)
    min_score: float | None = _option("drop hits scoring below this (the mode's score)", finite_number)
    # the query embedder's stored name (``embed_model_name``): its vectors are the ones compared;
    # None: the one stored model of the query vector's size
    embed_model: str | None = None
    lang: str | None = _option(
        "the query's language for word search: an ISO code (de, es) or a text-search configuration"
        " (german, simple); default: detected among the stored languages (docs/LANGUAGES.md)"
    )
    parts: QueryParts = field(default=QueryParts((), (), ()), init=False)

    def __post_init__(self) -> None:
        texts = (self.text, self.speaker, self.channel, self.video)
        if any(t is not None and "\x00" in t for t in texts):
            raise ConfigError("a search cannot hold a NUL character")
        parts = QueryParts.of(self.text)
        if not parts.phrases and not parts.words:
            raise ConfigError("an empty query: give some words to search for (not only -exclusions)")
        if self.min_score is not None and not math.isfinite(self.min_score):
            raise ConfigError("the minimum score must be a finite number")
        if self.mode not in MODES:
            raise ConfigError(f"unknown search mode {self.mode!r}: use one of {', '.join(MODES)}")
        if not 1 <= self.limit <= 1000:
            raise ConfigError("the search limit must be between 1 and 1000")
        if self.since and self.until and self.since > self.until:
            raise ConfigError(f"--since {self.since} is after --until {self.until}")
        if self.lang is not None:
            config_for_lang(self.lang)  # ConfigError: neither a language code nor a configuration
        object.__setattr__(self, "parts", parts)

    @property
    def phrases(self) -> tuple[str, ...]:
        return self.parts.phrases

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
