"""Mapping yt-dlp's flat-playlist entries to safe, typed VideoRefs, and the prefilters."""

from ytingest.items import VideoRef
from ytingest.stages.discover import entry_to_ref, is_short, last_error_line, safe_id


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
