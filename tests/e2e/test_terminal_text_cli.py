"""Hostile source text as a user meets it (issue 27): `search`, `status`, `channels`, `speakers` and
`top --once` print titles, names and segments as text, with no control byte of their own."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import Cli, cli_rows
from tests.unit.test_progress import _progress_doc
from ytingest.monitor.http import MetricsServer
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.channel import sample_episodes

pytestmark = pytest.mark.slow

# an OSC title, an OSC 8 link, a clear screen, a bell, a C1 CSI, an RTL override, Rich markup
HOSTILE = (
    "\x1b]0;pwned\x07\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"
    "\x1b[2J\x07\x9b31m evil\u202etxt.exe [link=https://evil.example/]x[/link] [/]"
)
SQL_HOSTILE = "E'" + "".join(f"\\u{ord(c):04x}" for c in HOSTILE) + "'"
FORBIDDEN = {*map(chr, range(0x00, 0x20)), *map(chr, range(0x7F, 0xA0)), "\u202e"} - {"\n"}


def assert_text_only(out: str) -> None:
    assert not {c for c in out if c in FORBIDDEN}, ascii(out)


def test_search_status_channels_and_speakers_print_a_hostile_title_as_text(cli: Cli) -> None:
    """A title, channel name, speaker and segment stored with escapes, markup and an RTL override
    (as rows stored before sources were cleaned): every text line shows them escaped, and
    ``--json`` still gives the stored text back exactly."""
    cli.env["SPEAKERS"] = "false"
    with serve_in_thread(ChannelServer([sample_episodes()[2]])) as ch:  # 14.5 s
        first = cli("stream", ch.feed_url, "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    cli_rows(cli, f"UPDATE videos SET title = {SQL_HOSTILE}, channel_name = {SQL_HOSTILE} RETURNING id")
    cli_rows(
        cli, f"UPDATE segments SET text = text || ' ' || {SQL_HOSTILE}, speaker = {SQL_HOSTILE} RETURNING idx"
    )
    outputs = [cli("search", "tomatoes", "--mode", "keyword"), cli("search", "tomatoes", "--group")]
    outputs += [cli("status"), cli("channels"), cli("speakers")]
    for r in outputs:
        assert r.returncode == 0, r.stderr
        assert_text_only(r.stdout)
        assert_text_only(r.stderr)
    assert "\\x1b]0;pwned\\x07" in outputs[0].stdout and "[/]" in outputs[0].stdout
    assert "evil\\u202etxt.exe" in outputs[1].stdout and "\\x9b31m" in outputs[3].stdout
    found = cli("search", "tomatoes", "--mode", "keyword", "--json")
    assert_text_only(found.stdout)
    assert {h["title"] for h in found.json()} == {HOSTILE}


def test_top_once_draws_a_hostile_title_as_text() -> None:
    """`top --once` against a /status whose titles carry escapes and ``[/]`` (which crashed it with
    a MarkupError): exit 0, the titles shown, no ESC of their own (not a terminal: no styling)."""
    doc: dict[str, Any] = _progress_doc()
    doc["snapshot"]["in_model"] = [{**v, "title": HOSTILE} for v in doc["snapshot"]["in_model"]]
    with serve_in_thread(MetricsServer(lambda: doc)) as server:
        top = subprocess.run(
            [sys.executable, "-m", "ytingest", "top", "--port", str(server.port), "--once"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert top.returncode == 0, top.stderr
    assert_text_only(top.stdout)
    assert "\\x1b]0;pwned" in top.stdout and "bottleneck:" in top.stdout
