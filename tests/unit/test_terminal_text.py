"""Hostile source text (issue 27): a terminal shows titles, names, segments and reasons as text,
never as control sequences or Rich markup; a web page isolates their bidi controls."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from rich.console import Console, RenderableType

from tests.unit.test_progress import _progress_doc
from tests.unit.test_web_app import FakeEngine, hit
from ytingest.cli.output import print_channels, print_hits, print_speakers, print_status, print_summary
from ytingest.cli.workers import render_cluster
from ytingest.items import Failure, RunSummary
from ytingest.monitor.dashboard import render
from ytingest.termtext import dumps, safe, text
from ytingest.web import make_app

ESC, BEL, CSI8, RLO = "\x1b", "\x07", "\x9b", "\u202e"
HOSTILE = {
    "osc title": "\x1b]0;pwned\x07Episode",
    "osc 8 link": "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\",
    "clear screen": "\x1b[2J\x1b[HEpisode",
    "bell": "ding\x07",
    "nul and del": "a\x00b\x7fc",
    "carriage return": "safe title\rEVIL",
    "c1 csi": "\x9b31mred",
    "rtl override": "evil\u202etxt.exe",
    "bidi isolates": "\u2066a\u2069\u200e\u200f\u061c",
    "rich link": "[link=https://evil.example/]click[/link]",
    "rich close": "[/] [bold]x[/bold] [/]",
}
# what a terminal must never receive from source text: C0 (but newline), DEL, C1, bidi controls
FORBIDDEN = {*map(chr, range(0x00, 0x20)), *map(chr, range(0x7F, 0xA0)), "\u202e", "\u2066", "\u200f"} - {
    "\n"
}


def raw_controls(out: str) -> set[str]:
    return {c for c in out if c in FORBIDDEN}


def plain(renderable: RenderableType, width: int = 200) -> str:
    """What Rich writes with no terminal: any ESC in it would be the source text's."""
    console = Console(file=StringIO(), force_terminal=False, color_system=None, width=width)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def styled(renderable: RenderableType) -> str:
    """What Rich writes to a colour terminal: its own SGR styling only."""
    console = Console(file=StringIO(), force_terminal=True, color_system="truecolor", width=200)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_safe_leaves_no_control_character_and_shows_each_one(name: str) -> None:
    """Every control and bidi character becomes a visible escape (``\\x1b``, ``\\u202e``)."""
    value = HOSTILE[name]
    out = safe(value)
    assert not raw_controls(out), out
    for c in value:
        if c in FORBIDDEN:
            assert (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}") in out


def test_safe_keeps_ordinary_text_and_optionally_newlines() -> None:
    """Non-ASCII text, brackets and backslashes are unchanged; ``newlines=True`` keeps line feeds."""
    for ok in ("Café — 東京 [live] ~ 100%", "Привет, мир", "back\\slash", "日本語 🎙"):
        assert safe(ok) == ok
    assert safe("a\nb") == "a\\x0ab" and safe("a\nb\x1b", newlines=True) == "a\nb\\x1b"
    assert safe(42) == "42"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_text_is_never_markup_and_renders_without_escapes(name: str) -> None:
    """Rich shows ``text()`` as it is: no MarkupError, no link, no ESC but its own styling."""
    out = plain(text(HOSTILE[name], style="bold"))
    assert not raw_controls(out.rstrip("\n")), out
    assert styled(text(HOSTILE[name])).count(ESC) == styled(text("x")).count(ESC)
    if name.startswith("rich"):
        assert HOSTILE[name] in out  # the brackets, verbatim


def test_dumps_is_the_same_data_with_no_raw_control() -> None:
    """JSON keeps the data (a parser reads it back unchanged) and emits none of the controls."""
    doc = {"titles": list(HOSTILE.values()), "ok": "Café 東京"}
    out = dumps(doc)
    assert not raw_controls(out) and json.loads(out) == doc and "Café 東京" in out
    assert ESC not in json.dumps(doc, ensure_ascii=False)  # json.dumps escapes C0 on its own …
    assert CSI8 in json.dumps(doc, ensure_ascii=False)  # … but not C1 (nor DEL, nor bidi)


def _hostile_status() -> dict[str, Any]:
    doc = _progress_doc()
    snap = doc["snapshot"]
    titles = list(HOSTILE.values())
    snap["in_model"] = [{**v, "title": t} for v in snap["in_model"] for t in titles]
    snap["verdict"] = {"stage": "source", "advice": "yt-dlp said: [/] \x1b]0;x\x07 sign in"}
    first = next(iter(snap["stages"]))
    snap["stages"][first]["label"] = "[/]\x1b[2J"
    doc["cluster"] = {"workers": 1, "paused_s": 5.0, "pause_reason": "[/] bot check \x1b[2J"}
    return doc


def test_the_dashboard_shows_hostile_titles_as_text() -> None:
    """`top` and `stream`'s live view: titles with markup and escapes draw without an error,
    without an ESC of their own, and with ``[/]`` shown."""
    doc = _hostile_status()
    out = plain(render(doc), width=400)
    assert not raw_controls(out.replace("\n", "")), repr(out)
    assert "\\x1b]0;pwned\\x07Episode" in out and "[/]" in out and "\\u202e" in out
    colour = styled(render(doc))
    assert "\x1b]" not in colour and BEL not in colour and CSI8 not in colour  # no OSC (title, link)
    assert "\x1b[2J" not in colour and "[link=https://evil.example/]click[/link]" in colour


def test_the_cluster_view_shows_hostile_worker_names_as_text() -> None:
    """`top --database` and `workers`: a worker's name, host or GPU is text, not markup."""
    row = {
        "name": "[/]\x1b]0;x\x07",
        "host": "[link=https://evil.example/]h[/link]",
        "pid": 1,
        "gpu": "\u202egpu",
        "state": "running",
        "live": True,
        "in_flight": 0,
        "done": 1,
        "failed": 0,
        "videos_per_hour": 2.0,
        "seen_s_ago": 1.0,
    }
    out = plain(render_cluster([row], {"pause_reason": "[/]"}), width=300)
    assert not raw_controls(out.replace("\n", "")) and "[/]" in out and "[link=" in out


def test_cli_lines_escape_titles_names_segments_and_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    """`search` (flat and grouped), `status`, `channels`, `speakers` and `stream`'s summary."""
    bad = "".join(HOSTILE.values())
    hits = [hit("x1", title=bad, text=bad, speaker=bad, url="http://h/\x1b]8;;x"), hit("x2", title=bad)]
    print_hits(hits, group=False)
    print_hits(hits, group=True)
    print_status(
        {
            "videos": {"done": 1, "failed": 1, "pending": 1},
            "segments": 3,
            "failures": [{"video_id": "x1", "stage": "download", "attempts": 2, "reason": bad}],
            "warnings": [{"video_id": "x1", "warning": bad}],
            "waiting": [{"video_id": "x3", "status": "upcoming", "title": bad}],
        },
        channel=bad,
    )
    print_channels(
        [
            {
                "url": bad,
                "name": bad,
                "done": 1,
                "failed": 0,
                "pending": 0,
                "audio_hours": 1.0,
                "last_run": None,
            }
        ]
    )
    voice = {"segments": 1, "videos": 1, "channel": bad}
    print_speakers(
        {
            "enrolled": [{"name": bad, "clips": [], "model": "m", **voice}],
            "unknown": [{"label": bad, **voice}],
        }
    )
    print_summary(RunSummary(0, 1, 0, 0, 0.0, 1.0, failures=(Failure("x1", "download", bad),)))
    out, err = capsys.readouterr()
    assert not raw_controls(out.replace("\n", "")) and not err
    assert out.count("\\x1b]0;pwned\\x07Episode") >= 10 and "[/]" in out


async def test_the_search_page_isolates_bidi_in_titles_names_and_text() -> None:
    """Autoescape is on and each piece of source text sits in its own ``<bdi>``: an RTL override
    in a title cannot reorder the channel, the id or the next hit."""
    rlo = "evil\u202etxt.exe"
    engine = FakeEngine(hits=[hit("x1", title=rlo, text=rlo, speaker=rlo, before=rlo, channel=rlo)])
    async with TestClient(TestServer(make_app(engine))) as c:  # type: ignore[arg-type]
        body = await (await c.get("/", params={"q": "nothing"})).text()
    assert f'<h2 class="title"><bdi>{rlo}</bdi></h2>' in body
    for cls in ("channel", "speaker", "said", "context before"):
        assert f'<span class="{cls}"><bdi>{rlo}</bdi></span>' in body, cls
    assert body.count(f"<bdi>{rlo}</bdi>") == 5 and body.count(RLO) == 6  # the sixth: data-speaker=""
