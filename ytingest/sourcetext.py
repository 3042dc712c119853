"""Text and URLs from outside (yt-dlp's listings and metadata, users), made safe once where they enter.

``clean_line`` (titles, channel names) and ``clean_text`` (descriptions, error reasons) drop what
PostgreSQL refuses or a terminal obeys: NUL and every other C0/C1 control character (so also
ESC/OSC sequences, whose ESC goes with them), DEL and lone surrogates; they cap the length.
Bidi overrides and isolates (U+202A-U+202E, U+2066-U+2069, U+200E/F) are kept: they are text
to store, isolated where a page shows it and escaped where a terminal does. Both are idempotent.

``public_url`` drops a URL's userinfo (``user:password@``), a secret: the stored, logged and
shown form of every URL. ``pg_text`` is the last guard of an insert path for text that did not
come through here (PostgreSQL's text refuses NUL and asyncpg cannot encode a lone surrogate).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

TITLE_MAX = 500
CHANNEL_MAX = 300
DESCRIPTION_MAX = 5000

# a whole ANSI escape (CSI ``ESC [ … final``, 8-bit CSI, OSC ``ESC ] … BEL|ST``): out with its ESC
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_SPACES = str.maketrans(dict.fromkeys("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85", " "))
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # after _SPACES / newlines: none left
_CONTROLS_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_PG_BAD = re.compile(r"[\x00\ud800-\udfff]")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:)?//[^/?#]*@")


def _text(value: object) -> str:
    text = value if isinstance(value, str) else "" if value is None else str(value)
    return _ESCAPES.sub("", text)


def clean_line(value: object, cap: int = TITLE_MAX) -> str:
    """One line of text: controls out (tabs and newlines become spaces), runs of white space one
    space, no surrogates, at most ``cap`` characters."""
    text = _CONTROLS.sub("", _text(value).translate(_SPACES))
    return " ".join(text.split())[:cap].rstrip()


def clean_text(value: object, cap: int = DESCRIPTION_MAX) -> str:
    """Text that may hold lines (a description, an error message): as ``clean_line`` but newlines
    stay (``\\r\\n`` and ``\\r`` become ``\\n``), at most ``cap`` characters."""
    text = _text(value).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return _CONTROLS_BUT_NEWLINE.sub("", text).strip()[:cap].rstrip()


def pg_text(value: str) -> str:
    """``value`` without NUL and lone surrogates: what PostgreSQL and asyncpg accept as text."""
    return _PG_BAD.sub("", value) if _PG_BAD.search(value) else value


def public_url(url: str) -> str:
    """``url`` without its userinfo (``https://user:pass@host/x`` -> ``https://host/x``); anything
    else as given. What is stored, logged and shown; only a download is given the credential."""
    if "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a bad IPv6 literal: cut the userinfo by hand
        return _USERINFO.sub(lambda m: (m[1] or "") + "//", url, count=1)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def with_userinfo_of(url: str, source: str) -> str:
    """``url`` with ``source``'s userinfo when both are on the same scheme, host and port and
    ``url`` has none of its own (a feed behind basic auth lists media behind the same auth)."""
    try:
        mine, theirs = urlsplit(url), urlsplit(source)
    except ValueError:
        return url
    if "@" in mine.netloc or "@" not in theirs.netloc:
        return url
    userinfo, _, host = theirs.netloc.rpartition("@")
    if (mine.scheme, mine.netloc.lower()) != (theirs.scheme, host.lower()):
        return url
    return urlunsplit(mine._replace(netloc=f"{userinfo}@{mine.netloc}"))
