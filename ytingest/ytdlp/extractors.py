"""Pick yt-dlp's extractor for a URL here, once, so that each yt-dlp child skips the search.

A yt-dlp run tries its ~1,750 extractors' URL patterns in order until one fits, compiling
each pattern on the way: most of the CPU a short download costs (``python -m bench.ytdlp_cpu``).
The extractor classes keep their compiled patterns, so in this long-lived process the search
costs that once per run and microseconds after. The child then gets
``--use-extractors <name>,default``: the same extractor tried first, every other one still
behind it, so what yt-dlp does is unchanged; only the order of the search is.
"""

from __future__ import annotations

import functools
import re
from typing import Any


@functools.cache
def _enabled_extractors() -> tuple[Any, ...]:
    from yt_dlp.extractor import gen_extractor_classes

    return tuple(ie for ie in gen_extractor_classes() if ie._ENABLED)


def extractor_for(url: str) -> str | None:
    """The name of the first extractor yt-dlp would pick for ``url`` (its default order), or None."""
    for ie in _enabled_extractors():
        try:
            if ie.suitable(url):
                return str(ie.IE_NAME).lower()
        except Exception:  # an extractor's own pattern check failing: let the child search
            return None
    return None


def extractor_hint(url: str) -> list[str]:
    """yt-dlp arguments that try ``url``'s extractor first; none when unsure."""
    name = extractor_for(url)
    if not name or "," in name or name.startswith("-"):
        return []
    return ["--use-extractors", f"{re.escape(name)},default"]
