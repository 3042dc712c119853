"""Mapping yt-dlp's flat-playlist entries to safe, typed VideoRefs, and the prefilters."""

import asyncio
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import our_children
from ytingest.errors import DiscoverError
from ytingest.items import VideoRef
from ytingest.stages.discover import is_short
from ytingest.ytdlp.lister import YtDlpDiscoverer, entry_to_ref, last_error_line, safe_id


def test_youtube_entry_keeps_its_id_and_duration() -> None:
    """A plain YouTube entry keeps id, title, URL and duration."""
    ref = entry_to_ref(
        {
            "id": "dQw4w9WgXcQ",
            "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "title": "Never  gonna\ngive",
            "duration": 212,
        },
        "https://www.youtube.com/@chan",
    )
    assert ref is not None
    assert ref.id == "dQw4w9WgXcQ"
    assert ref.title == "Never gonna give"
    assert ref.duration == 212.0
    assert ref.webpage_url == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


def test_generic_entry_takes_the_smuggled_id_and_a_clean_page_url() -> None:
    """The generic extractor's smuggled force_videoid becomes the id; the fragment is dropped."""
    url = "http://h/audio/ep1.mp3#__youtubedl_smuggle=%7B%22force_videoid%22%3A+%22ep1%22%7D"
    ref = entry_to_ref({"id": None, "url": url, "webpage_url": url, "title": "t"}, "c")
    assert ref is not None
    assert ref.id == "ep1"
    assert ref.url == url  # yt-dlp still gets the smuggled URL
    assert ref.webpage_url == "http://h/audio/ep1.mp3"


def test_hostile_ids_become_hashes() -> None:
    """Ids with path separators, NULs, shell syntax or huge length never reach a file name."""
    for raw in ["../../etc/passwd", "a/b", "x\x00y", "$(rm -rf ~)", "a\nb", "z" * 500]:
        sid = safe_id(raw, "http://x")
        assert sid.startswith("h") and len(sid) == 21 and sid.isalnum(), raw
    assert safe_id("ok-id_1", "u") == "ok-id_1"
    assert safe_id(None, "http://a") != safe_id(None, "http://b")


def test_entry_without_url_is_dropped() -> None:
    """An entry yt-dlp gives without any URL cannot be downloaded and is ignored."""
    assert entry_to_ref({"id": "x", "title": "t"}, "c") is None


def test_shorts_by_url_or_duration() -> None:
    """A /shorts/ URL or a duration under 60 s is a Short; unknown duration is not."""
    assert is_short(VideoRef("a", "https://www.youtube.com/shorts/abc"))
    assert is_short(VideoRef("a", "https://x/watch?v=a", duration=59.0))
    assert not is_short(VideoRef("a", "https://x/watch?v=a", duration=60.0))
    assert not is_short(VideoRef("a", "https://x/watch?v=a", duration=None))


def test_last_error_line_prefers_yt_dlp_errors() -> None:
    """The reason recorded for a failure is yt-dlp's last ERROR line, without the prefix."""
    stderr = "WARNING: meh\nERROR: first\n[info] x\nERROR: [generic] x: HTTP Error 404: Not Found\n"
    assert last_error_line(stderr) == "[generic] x: HTTP Error 404: Not Found"
    assert last_error_line("just noise\n") == "just noise"
    assert last_error_line("") == "yt-dlp failed without a message"


def test_youtube_flat_entry_brings_live_status_date_and_channel() -> None:
    """yt-dlp's YouTube flat entry (youtube/_tab.py ``_extract_video``): live_status, the date that
    ``approximate_date`` gives, and the channel from the entry, else from the playlist fields."""
    entry = {
        "_type": "url",
        "ie_key": "Youtube",
        "id": "abcdefghijk",
        "url": "https://www.youtube.com/watch?v=abcdefghijk",
        "title": "Premiere",
        "duration": None,
        "channel": None,
        "channel_id": None,
        "uploader": None,
        "timestamp": 1767225600,
        "release_timestamp": 1767312000,
        "live_status": "is_upcoming",
        "playlist_channel": "The  Channel",
        "playlist_channel_id": "UCabcdefghijklmnopqrstuv",
        "playlist_uploader": "The Channel",
    }
    ref = entry_to_ref(entry, "https://www.youtube.com/@chan")
    assert ref is not None
    assert (ref.live_status, ref.upload_date) == ("is_upcoming", "2026-01-01")
    assert (ref.channel_name, ref.channel_id) == ("The Channel", "UCabcdefghijklmnopqrstuv")
    own = {**entry, "channel": "Guest", "channel_id": "UCguestguestguestguestgu", "live_status": None}
    ref = entry_to_ref(own, "https://www.youtube.com/playlist?list=PLx")
    assert ref is not None
    assert (ref.live_status, ref.channel_name, ref.channel_id) == (None, "Guest", "UCguestguestguestguestgu")
    bare = entry_to_ref({"id": "x", "url": "http://h/x.mp3"}, "c")
    assert bare is not None and (bare.channel_name, bare.channel_id, bare.live_status) == ("", "", None)


async def test_a_listing_closed_early_kills_its_child_at_once() -> None:
    """Closing the discovery generator after one entry kills the yt-dlp child before it returns."""
    script = (
        "import json, sys, time\n"
        "for i in range(3):\n"
        "    print(json.dumps({'id': f'v{i}', 'url': f'http://h/v{i}.mp3'}), flush=True)\n"
        "time.sleep(60)\n"
    )
    discoverer = YtDlpDiscoverer((sys.executable, "-c", script), pick_extractor=False)
    async with contextlib.aclosing(discoverer.discover("http://h/feed.xml")) as refs:
        async for ref in refs:
            assert ref.id == "v0"
            assert our_children(), "the child runs while the listing is read"
            break
    assert our_children() == []


def _fake_ytdlp(body: str) -> tuple[str, ...]:
    """A yt-dlp stand-in: a Python script that gets the argv the discoverer builds."""
    return (sys.executable, "-c", "import json, sys, time\n" + body)


async def test_the_listing_asks_yt_dlp_for_a_lazy_flat_playlist(tmp_path: Path) -> None:
    """The child's argv holds --lazy-playlist (an early stop saves the pages not read) and --flat-playlist."""
    argv_file = tmp_path / "argv.json"
    script = f"json.dump(sys.argv, open({str(argv_file)!r}, 'w'))\nprint(json.dumps({{'id': 'v0', 'url': 'http://h/v0'}}))\n"
    found = [
        r async for r in YtDlpDiscoverer(_fake_ytdlp(script), pick_extractor=False).discover("http://h/f")
    ]
    assert [r.id for r in found] == ["v0"]
    argv = json.loads(argv_file.read_text())
    assert "--lazy-playlist" in argv and "--flat-playlist" in argv
    assert argv[-2:] == ["--", "http://h/f"]


def test_yt_dlp_reads_a_paged_playlist_lazily_with_lazy_playlist() -> None:
    """In yt-dlp itself: with lazy_playlist each entry is printed as its page arrives; without it,
    every page is fetched before the first entry (YoutubeDL.__process_playlist's list(entries))."""
    from yt_dlp import YoutubeDL
    from yt_dlp.extractor.common import InfoExtractor

    def run(lazy: bool) -> list[str]:
        events: list[str] = []

        class PagedIE(InfoExtractor):
            _VALID_URL = r"paged:"

            def _real_extract(self, url: str) -> dict[str, Any]:
                def entries() -> Iterator[dict[str, Any]]:
                    for page in range(3):
                        events.append(f"page {page}")
                        for n in range(2):
                            yield self.url_result(f"http://h/{page}-{n}.mp3", video_id=f"{page}-{n}")

                return self.playlist_result(entries(), "paged", "Paged")

        params = {"lazy_playlist": lazy, "extract_flat": "in_playlist", "forcejson": True, "simulate": True}
        with YoutubeDL({**params, "quiet": True, "no_warnings": True}) as ydl:
            ydl.add_info_extractor(PagedIE())
            ydl.to_stdout = lambda message, *_, **__: events.append("entry")  # type: ignore[method-assign]
            ydl.extract_info("paged:x", ie_key="Paged")
        return events

    assert run(lazy=True)[:3] == ["page 0", "entry", "entry"]
    assert run(lazy=False)[:3] == ["page 0", "page 1", "page 2"]


async def test_a_slow_consumer_never_trips_the_silence_timeout() -> None:
    """timeout_s bounds yt-dlp's silence, not the consumer: a consumer slower than it still gets
    every entry and the listing ends normally (it used to be cancelled with a bare CancelledError)."""
    script = (
        "for i in range(3):\n    print(json.dumps({'id': f'v{i}', 'url': f'http://h/v{i}'}), flush=True)\n"
    )
    discoverer = YtDlpDiscoverer(_fake_ytdlp(script), timeout_s=1, pick_extractor=False)

    async def consume() -> list[str]:
        got = []
        async for ref in discoverer.discover("http://h/feed.xml"):
            got.append(ref.id)
            await asyncio.sleep(0.7)  # 2.1 s in all: over timeout_s
        return got

    assert await asyncio.wait_for(consume(), 20) == ["v0", "v1", "v2"]


async def test_a_silent_yt_dlp_is_a_discover_error() -> None:
    """yt-dlp prints nothing for timeout_s: a DiscoverError that says so, and the child is killed."""
    discoverer = YtDlpDiscoverer(_fake_ytdlp("time.sleep(60)\n"), timeout_s=0.5, pick_extractor=False)
    with pytest.raises(DiscoverError, match="printed nothing"):
        [r async for r in discoverer.discover("http://h/feed.xml")]
    assert our_children() == []


def test_approximate_date_is_merged_into_the_users_youtubetab_arguments(tmp_path: Path) -> None:
    """yt-dlp keeps one --extractor-args per extractor: ours joins the user's, which survive."""
    import yt_dlp

    user = ("yt-dlp", "--extractor-args", "youtubetab:skip=webpage", "--extractor-args", "youtube:lang=de")
    argv = YtDlpDiscoverer(user).command("https://www.youtube.com/@x/videos", [], tmp_path)
    opts = yt_dlp.parse_options(argv[1:]).ydl_opts
    assert opts["extractor_args"]["youtubetab"] == {"skip": ["webpage"], "approximate_date": [""]}
    assert opts["extractor_args"]["youtube"] == {"lang": ["de"]}
    assert opts["lazy_playlist"] is True
    bare = yt_dlp.parse_options(YtDlpDiscoverer(("yt-dlp",)).command("u", [], tmp_path)[1:]).ydl_opts
    assert bare["extractor_args"] == {"youtubetab": {"approximate_date": [""]}}
