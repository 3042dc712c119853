"""The extractor yt-dlp would pick, found in this process (real yt-dlp extractor classes)."""

import pytest

from ytingest.ytdlp.extractors import extractor_for, extractor_hint


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "youtube"),
        ("https://youtu.be/dQw4w9WgXcQ", "youtube"),
        ("https://www.youtube.com/@somechannel/videos", "youtube:tab"),
        ("http://127.0.0.1:8000/audio/ep01.mp3", "generic"),
        ("http://127.0.0.1:8000/feed.xml", "generic"),
    ],
)
def test_the_first_suitable_extractor_in_yt_dlp_order(url: str, name: str) -> None:
    """Site URLs get their site's extractor; anything else falls through to generic, as in yt-dlp."""
    assert extractor_for(url) == name


def test_hint_tries_the_pick_first_and_keeps_every_other_extractor() -> None:
    """The child may still use any extractor (a nested URL), the pick is only tried first."""
    assert extractor_hint("https://www.youtube.com/@c/videos") == ["--use-extractors", "youtube:tab,default"]
    assert extractor_hint("http://h/a.mp3") == ["--use-extractors", "generic,default"]
