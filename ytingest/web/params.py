"""Query-string parameters → a validated ``SearchQuery``; every bad value is a one-line ``ConfigError``.

The parameters are ``q`` and ``SearchQuery``'s options (``query_options``), parsed the way the
CLI parses its flags: the same names, the same parsers, the same checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ytingest.errors import ConfigError
from ytingest.search import SearchQuery, query_options

SEARCH_PARAMS = ("q", *query_options())
MAX_TEXT = 500  # a query longer than this is not a search, it is a paste


def text(params: Mapping[str, str], name: str) -> str | None:
    """A parameter's value, stripped; ``None`` when absent or blank (an empty <select> choice)."""
    value = params.get(name, "").strip()
    if len(value) > MAX_TEXT:
        raise ConfigError(f"{name} is too long (at most {MAX_TEXT} characters)")
    return value or None


def search_query(params: Mapping[str, str], *, embed_model: str | None = None) -> SearchQuery:
    """The search a request asks for (``q`` required), compared with ``embed_model``'s vectors (the
    server's embedder); raises ``ConfigError`` on any bad value."""
    q = text(params, "q")
    if q is None:
        raise ConfigError("missing q: give some words to search for")
    given: dict[str, Any] = {}
    for name, option in query_options().items():
        value = text(params, name)
        if value is None:
            continue
        try:
            given[name] = option.parse(value)
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    return SearchQuery(q, embed_model=embed_model, **given)
