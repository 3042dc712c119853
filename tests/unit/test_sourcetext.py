"""Text and URLs from the source, cleaned once where they enter (``ytingest.sourcetext``)."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ytingest.childenv import child_env, scrubbed_environ
from ytingest.items import VideoRef
from ytingest.sourcetext import (
    CHANNEL_MAX,
    TITLE_MAX,
    clean_line,
    clean_text,
    pg_text,
    public_url,
    with_userinfo_of,
)
from ytingest.ytdlp.downloader import with_metadata
from ytingest.ytdlp.lister import entry_to_ref

CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SURROGATES = re.compile(r"[\ud800-\udfff]")
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"
# any code point, lone surrogates and controls and bidi marks made likely
ANY_TEXT = st.text(
    st.one_of(st.characters(codec=None), st.sampled_from("\x00\x1b\x07\x9b\t\n\r\x85 []" + BIDI)),
    max_size=700,
)


@settings(max_examples=400, deadline=None)
@given(ANY_TEXT, st.integers(1, 600))
def test_clean_line_leaves_no_control_no_surrogate_within_cap_and_is_idempotent(text: str, cap: int) -> None:
    """Any string in: no C0/C1 control (tabs, newlines too), no lone surrogate, at most ``cap``
    characters, no edge or double spaces; cleaning again changes nothing."""
    out = clean_line(text, cap)
    assert not CONTROLS.search(out) and not SURROGATES.search(out)
    assert len(out) <= cap and out == out.strip() and "  " not in out
    assert clean_line(out, cap) == out
    out.encode("utf-8")  # what asyncpg sends: no lone surrogate left to fail on


@settings(max_examples=400, deadline=None)
@given(ANY_TEXT, st.integers(1, 6000))
def test_clean_text_keeps_only_newlines_and_is_idempotent(text: str, cap: int) -> None:
    """Descriptions: newlines are the only control left; within ``cap``; idempotent."""
    out = clean_text(text, cap)
    assert not CONTROLS.search(out.replace("\n", "")) and not SURROGATES.search(out)
    assert len(out) <= cap and clean_text(out, cap) == out


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8").filter(str.isprintable), max_size=TITLE_MAX))
def test_printable_text_is_unchanged(text: str) -> None:
    """Ordinary printable text (single spaces, no edge spaces) comes out as it went in."""
    line = " ".join(text.split())
    assert clean_line(line) == line
    assert clean_text(line) == line


@given(ANY_TEXT)
def test_pg_text_removes_only_nul_and_surrogates(text: str) -> None:
    """The insert paths' last guard: no NUL, no surrogate, nothing else touched."""
    out = pg_text(text)
    assert "\x00" not in out and not SURROGATES.search(out)
    assert out == re.sub(r"[\x00\ud800-\udfff]", "", text)


def test_escape_sequences_go_whole_and_bidi_and_markup_stay() -> None:
    """ESC/OSC sequences go with their parameters; bidi marks and rich-style markup stay as text."""
    title = "a\x00b \x1b[31mred\x1b[0m \x1b]8;;https://evil\x07link\x1b]8;;\x07 \u202eevil\u202c [link=https://evil]x[/link]"
    assert clean_line(title) == "ab red link \u202eevil\u202c [link=https://evil]x[/link]"
    assert clean_line("one\ttwo\nthree\r\nfour") == "one two three four"
    assert clean_text("one\ttwo\r\nthree\x00\rfour") == "one two\nthree\nfour"
    assert clean_line(None) == "" and clean_line(42) == "42"


def test_public_url_drops_userinfo_only() -> None:
    """The userinfo goes; the rest of the URL (an ``@`` in its path or query too) stays."""
    assert public_url("http://user:S3CRET@host:8080/feed.xml?a=b@c#x") == "http://host:8080/feed.xml?a=b@c#x"
    assert public_url("https://tok@example.com/") == "https://example.com/"
    assert public_url("http://us@er:p@ss@host/x") == "http://host/x"
    for same in ("https://www.youtube.com/@name", "/tmp/a@b.mp3", "mailto:a@b.c", "", "plain"):
        assert public_url(same) == same
    assert public_url("http://u:p@[::1/x") == "http://[::1/x"  # urlsplit refuses it: cut by hand


def test_with_userinfo_of_only_on_the_same_origin() -> None:
    """A media URL on the feed's own scheme, host and port gets the feed's credential; no other."""
    feed = "http://u:pw@127.0.0.1:81/feed.xml"
    assert with_userinfo_of("http://127.0.0.1:81/a.mp3", feed) == "http://u:pw@127.0.0.1:81/a.mp3"
    assert with_userinfo_of("http://127.0.0.1:82/a.mp3", feed) == "http://127.0.0.1:82/a.mp3"
    assert with_userinfo_of("https://127.0.0.1:81/a.mp3", feed) == "https://127.0.0.1:81/a.mp3"
    assert with_userinfo_of("http://x:y@127.0.0.1:81/a", feed) == "http://x:y@127.0.0.1:81/a"
    assert (
        with_userinfo_of("http://127.0.0.1:81/a.mp3", "http://127.0.0.1:81/f") == "http://127.0.0.1:81/a.mp3"
    )


def test_entry_to_ref_cleans_text_and_keeps_the_credential_out_of_sight() -> None:
    """A listing entry: title and channel cleaned; stored URLs public; the credential only in
    ``download_url``, never in the ref's repr."""
    entry = {
        "id": "ep1",
        "url": "http://127.0.0.1:81/audio/ep1.mp3",
        "title": "T\x00itle\x1b]0;pwn\x07\nnext " + "x" * 900,
        "channel": "Chan\tnel\x00" + "y" * 900,
    }
    ref = entry_to_ref(entry, "http://u:S3CRETPASS@127.0.0.1:81/feed.xml")
    assert ref is not None
    assert ref.title.startswith("Title next xxx") and len(ref.title) == TITLE_MAX
    assert ref.channel_name.startswith("Chan nel") and len(ref.channel_name) == CHANNEL_MAX
    assert ref.channel == "http://127.0.0.1:81/feed.xml"
    assert ref.url == ref.webpage_url == "http://127.0.0.1:81/audio/ep1.mp3"
    assert ref.download_url == "http://u:S3CRETPASS@127.0.0.1:81/audio/ep1.mp3"
    assert "S3CRETPASS" not in repr(ref)
    assert ref == VideoRef(**{**{f: getattr(ref, f) for f in VideoRef.__slots__}, "fetch_url": ""})


def test_download_metadata_is_cleaned() -> None:
    """The download's own metadata (channel name, id) is cleaned as the listing's is."""
    from pathlib import Path

    from ytingest.items import AudioFile

    audio = AudioFile(VideoRef("v", "http://h/v"), Path("/tmp/v.mp3"), 1)
    out = with_metadata(audio, '{"channel": "A\\u0000B\\u001b[2J\\tC", "channel_id": "id\\n1"}\n')
    assert (out.channel_name, out.channel_id) == ("AB C", "id 1")


def test_child_env_has_no_database_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Children get our environment less DATABASE_URL, libpq's PG* variables and our secret
    settings (cookies, YTDLP_ARGS); PATH, PYTHONPATH and the proxy variables stay;
    ``scrubbed_environ`` hides them from os.environ and puts them back."""
    env = {"DATABASE_URL": "postgresql://u:pw@h/db", "PGPASSWORD": "pw", "database_url": "x", "PATH": "/bin"}
    env["PYTHONPATH"] = "/plugins"
    env |= {
        "COOKIES_FILE": "/home/u/c.txt",
        "YTDLP_ARGS": "--proxy http://u:pw@p:1",
        "HTTPS_PROXY": "http://p:1",
    }
    assert child_env(env) == {"PATH": "/bin", "PYTHONPATH": "/plugins", "HTTPS_PROXY": "http://p:1"}
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@h/db")
    with scrubbed_environ():
        assert "DATABASE_URL" not in os.environ
    assert os.environ["DATABASE_URL"] == "postgresql://u:pw@h/db"
