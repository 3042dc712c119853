"""Mapping yt-dlp's flat-playlist entries to safe, typed VideoRefs, and the prefilters."""

import contextlib
import sys

import psutil

from ytingest.items import VideoRef
from ytingest.stages.discover import YtDlpDiscoverer, entry_to_ref, is_short, last_error_line, safe_id


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
            assert psutil.Process().children(), "the child runs while the listing is read"
            break
    assert psutil.Process().children() == []
