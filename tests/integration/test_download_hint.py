"""A download with the extractor hint writes the same file as yt-dlp's own search (real yt-dlp)."""

import sys
from pathlib import Path

from ytingest.testing import ChannelServer, sample_episodes
from ytingest.ytdlp.downloader import YtDlpDownloader
from ytingest.ytdlp.lister import YtDlpDiscoverer

YTDLP = (sys.executable, "-m", "yt_dlp")


async def test_hinted_and_plain_downloads_are_identical(tmp_path: Path) -> None:
    async with ChannelServer(sample_episodes()[:1]) as channel:
        plain = [r async for r in YtDlpDiscoverer(YTDLP, pick_extractor=False).discover(channel.feed_url)]
        hinted = [r async for r in YtDlpDiscoverer(YTDLP).discover(channel.feed_url)]
        assert plain == hinted and len(hinted) == 1
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        a = await YtDlpDownloader(YTDLP, pick_extractor=False).download(plain[0], tmp_path / "a")
        b = await YtDlpDownloader(YTDLP).download(hinted[0], tmp_path / "b")
    assert a.path.name == b.path.name
    assert a.path.read_bytes() == b.path.read_bytes() == sample_episodes()[0].path.read_bytes()
