"""Query-string parameters → a validated ``SearchQuery``; every bad value is a one-line ``ConfigError``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import cast

from ytingest.errors import ConfigError
from ytingest.search import Mode, SearchQuery, parse_day

SEARCH_PARAMS = ("q", "limit", "mode", "speaker", "channel", "video", "since", "until", "min_score", "lang")
MAX_TEXT = 500  # a query longer than this is not a search, it is a paste


def text(params: Mapping[str, str], name: str) -> str | None:
    """A parameter's value, stripped; ``None`` when absent or blank (an empty <select> choice)."""
    value = params.get(name, "").strip()
    if len(value) > MAX_TEXT:
        raise ConfigError(f"{name} is too long (at most {MAX_TEXT} characters)")
    return value or None


def integer(params: Mapping[str, str], name: str, default: int) -> int:
    value = text(params, name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None


def number(params: Mapping[str, str], name: str) -> float | None:
    value = text(params, name)
    if value is None:
        return None
    try:
        result = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {value!r}") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise ConfigError(f"{name} must be a finite number")
    return result


def day(params: Mapping[str, str], name: str) -> date | None:
    value = text(params, name)
    return parse_day(value) if value is not None else None


def search_query(
    params: Mapping[str, str], *, default_limit: int = 10, embed_model: str | None = None
) -> SearchQuery:
    """The search a request asks for (``q`` required), compared with ``embed_model``'s vectors (the
    server's embedder); raises ``ConfigError`` on any bad value."""
    q = text(params, "q")
    if q is None:
        raise ConfigError("missing q: give some words to search for")
    return SearchQuery(
        q,
        mode=cast(Mode, text(params, "mode") or "hybrid"),  # SearchQuery rejects unknown modes
        limit=integer(params, "limit", default_limit),
        speaker=text(params, "speaker"),
        channel=text(params, "channel"),
        video=text(params, "video"),
        since=day(params, "since"),
        until=day(params, "until"),
        min_score=number(params, "min_score"),
        embed_model=embed_model,
        lang=text(params, "lang"),  # the query's language (docs/LANGUAGES.md); none: detected
    )
