"""What a listing reads, as pure functions: a bare channel URL's tabs, which listings are newest
first, dates against ``--since``/``--until``, and yt-dlp's "no such tab" answer."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from urllib.parse import urlsplit, urlunsplit

from ytingest.config import TABS, tab_names
from ytingest.errors import ConfigError

_YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com"})
# /@name, /channel/UC…, /c/name, /user/name, then optionally one more segment: the tab
_CHANNEL_PATH = re.compile(r"/(?:@[^/]+|(?:channel|c|user)/[^/]+)(?:/(?P<tab>[^/]+))?/?")
_MISSING_TAB = re.compile(r"does not have an? (\w+) tab")  # yt-dlp's youtube:tab message


def parse_tabs(spec: str | Iterable[str]) -> tuple[str, ...]:
    """``"videos,streams"`` (or a sequence of names) as a tuple in the given order, without
    repeats; a ConfigError names an unknown tab or an empty list (``config.tab_names``)."""
    try:
        return tab_names(spec)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def upload_day_of(upload_date: object, timestamp: object = None) -> str | None:
    """An upload date as ISO ``YYYY-MM-DD``: yt-dlp's ``upload_date`` (YYYYMMDD) if it is a real
    day, else ``timestamp`` (seconds, read as UTC) if it is a real moment; else None. A bad
    ``20250230``, a NaN or a timestamp past year 9999 is None here, not a ValueError later."""
    if isinstance(upload_date, str) and len(upload_date) == 8 and upload_date.isdigit():
        try:
            return date(int(upload_date[:4]), int(upload_date[4:6]), int(upload_date[6:])).isoformat()
        except ValueError:
            pass
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool) and math.isfinite(timestamp):
        try:
            return datetime.fromtimestamp(timestamp, UTC).date().isoformat()
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _channel_tab(url: str) -> tuple[bool, str | None]:
    """(whether ``url`` is a YouTube channel URL, the tab it names or None)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in _YOUTUBE_HOSTS:
        return False, None
    match = _CHANNEL_PATH.fullmatch(parts.path)
    if match is None:
        return False, None
    return True, match["tab"]


def listing_urls(url: str, tabs: Iterable[str]) -> tuple[str, ...]:
    """What to list for ``url``: a bare YouTube channel URL (``/@name``, ``/channel/UC…``, ``/c/name``,
    ``/user/name``) becomes one URL per tab, in the order of ``tabs``; any other URL (one that names a
    tab, a playlist, a video, another site) is listed as given."""
    is_channel, tab = _channel_tab(url)
    if not is_channel or tab is not None:
        return (url,)
    parts = urlsplit(url)
    base = parts.path.rstrip("/")
    return tuple(urlunsplit(parts._replace(path=f"{base}/{name}")) for name in tabs)


def newest_first(url: str) -> bool:
    """Whether a listing of ``url`` comes newest first, so ``--since`` may stop it at the first older
    entry: a YouTube channel tab. Playlists, feeds and other sites are only filtered."""
    is_channel, tab = _channel_tab(url)
    return is_channel and tab in TABS


def outside(upload_date: str | None, since: date | None, until: date | None) -> str | None:
    """Why an upload date (ISO) is outside ``since``..``until`` (both inclusive): ``"before since"``
    or ``"after until"``; None when it is inside or unknown (an entry without a date is kept)."""
    if upload_date is None or (since is None and until is None):
        return None
    day = date.fromisoformat(upload_date)
    if since is not None and day < since:
        return "before since"
    if until is not None and day > until:
        return "after until"
    return None


def missing_tab(message: str) -> str | None:
    """The tab named by yt-dlp's "This channel does not have a streams tab", else None."""
    found = _MISSING_TAB.search(message)
    return found[1] if found else None
