"""HTML rendering: the Jinja2 environment (autoescape on) and the filters the templates use.

Every value reaches the page escaped. ``highlight`` is the one filter that returns markup: it splits
the *raw* text at the query's terms, escapes each piece, and wraps only the matches in ``<mark>``, so
a term can never match inside an entity and no stored text is ever injected as HTML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from ytingest.search import is_youtube

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
_SUFFIX = r"(?:s|es|ed|ing)?"  # keyword search stems words; highlight the inflected form too


def clock(seconds: float) -> str:
    """``m:ss`` under an hour, ``h:mm:ss`` from an hour on."""
    total = max(0, int(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def terms_pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any term as a whole word (longest first)."""
    words = sorted({t for t in terms if t.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternatives = "|".join(re.escape(t) for t in words)
    return re.compile(rf"(?<!\w)(?:{alternatives}){_SUFFIX}(?!\w)", re.IGNORECASE)


def highlight(text: str, terms: Sequence[str]) -> Markup:
    """``text`` escaped, with each occurrence of a term wrapped in ``<mark>``."""
    pattern = terms_pattern(terms)
    if pattern is None:
        return Markup(escape(text))
    out: list[str] = []
    pos = 0
    for m in pattern.finditer(text):
        out.append(escape(text[pos : m.start()]))
        out.append(Markup("<mark>%s</mark>") % m.group(0))  # % escapes the match
        pos = m.end()
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def safe_url(url: str) -> str:
    """``url`` if it is http(s), else ``#``: a stored ``javascript:`` link must never become a link."""
    return url if urlsplit(url.strip()).scheme.lower() in ("http", "https") else "#"


def percent(fraction: float) -> str:
    return f"{fraction:.0%}"


def environment() -> Environment:
    """The templates' environment: autoescape everywhere, undefined names are errors."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(clock=clock, highlight=highlight, percent=percent, safe_url=safe_url)
    env.tests["youtube"] = is_youtube
    return env


def render(env: Environment, name: str, **context: Any) -> str:
    return env.get_template(name).render(**context)
