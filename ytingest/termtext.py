"""Source text (titles, channel and speaker names, segments, yt-dlp messages) shown in a terminal
as text, never as commands.

``safe`` makes every control character visible: C0 (NUL, BEL, CR, ESC: ``\\x1b``), DEL and C1
(``\\x9b``, a one-byte CSI), so a title can neither set the window title, clear the screen nor
plant an OSC 8 link; and the bidi controls (``\\u202e``), so "evil\\u202eexe.txt" cannot read
as something else. ``text`` is that string as a ``rich.text.Text``, which Rich never parses as
markup (``[link=…]`` and ``[/]`` stay text). ``dumps`` is JSON with the same characters escaped
as ``\\uXXXX``: the data is unchanged for a parser, and no raw control byte reaches a terminal.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text

_CONTROLS = [*range(0x00, 0x20), *range(0x7F, 0xA0)]  # C0, DEL, C1
_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_SEPARATORS = [0x2028, 0x2029]  # line and paragraph separators: a line break in some terminals

_TABLE = {
    **{c: f"\\x{c:02x}" for c in _CONTROLS},
    **{c: f"\\u{c:04x}" for c in (*_BIDI, *_SEPARATORS)},
}
_TABLE_LINES = {k: v for k, v in _TABLE.items() if k != 0x0A}
# json.dumps already escapes C0; these it leaves raw with ensure_ascii=False
_JSON_TABLE = {c: f"\\u{c:04x}" for c in (0x7F, *range(0x80, 0xA0), *_BIDI, *_SEPARATORS)}


def safe(value: object, *, newlines: bool = False) -> str:
    """``str(value)`` with every control and bidi character written as a visible escape;
    ``newlines=True`` keeps line feeds (a multi-line export), else they show as ``\\x0a``."""
    return str(value).translate(_TABLE_LINES if newlines else _TABLE)


def text(value: object, style: str = "") -> Text:
    """``safe(value)`` as a Rich ``Text``: shown as is, never read as markup."""
    return Text(safe(value), style=style)


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps(obj, ensure_ascii=False)`` with DEL, C1 and bidi controls escaped too."""
    return json.dumps(obj, ensure_ascii=False, **kwargs).translate(_JSON_TABLE)
