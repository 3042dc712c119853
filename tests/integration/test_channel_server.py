"""The local channel's audio answers HTTP Range requests, as real hosts do (browsers' players seek),
and serves each episode under its own file type (.m4a as audio/mp4, as YouTube's audio is)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp

from ytingest.testing import ChannelServer, sample_episodes
from ytingest.testing.long_episodes import long_episode


async def test_audio_answers_byte_ranges_and_whole_files() -> None:
    ep = sample_episodes()[0]
    data = ep.path.read_bytes()
    async with ChannelServer([ep]) as channel, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{channel.port}/audio/{ep.id}.mp3"
        async with http.get(url) as whole:
            assert whole.status == 200 and whole.headers["Accept-Ranges"] == "bytes"
            assert await whole.read() == data
        async with http.get(url, headers={"Range": "bytes=100-199"}) as part:
            assert part.status == 206
            assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
            assert await part.read() == data[100:200]
        async with http.get(url, headers={"Range": "bytes=-50"}) as tail:
            assert tail.status == 206 and await tail.read() == data[-50:]
        async with http.get(url, headers={"Range": f"bytes={len(data)}-"}) as beyond:
            assert beyond.status == 416


async def test_m4a_episode_is_served_as_audio_mp4_and_downloaded_by_ytdlp(tmp_path: Path) -> None:
    """An .m4a episode (YouTube's audio) is listed and served as audio/mp4; yt-dlp fetches it whole."""
    ep = long_episode(1, tmp_path / "cache")
    assert ep.path.suffix == ".m4a" and 59 < ep.duration < 61
    async with ChannelServer([ep, sample_episodes()[0]]) as channel, aiohttp.ClientSession() as http:
        async with http.get(channel.feed_url) as feed:
            xml = await feed.text()
        assert f'/audio/{ep.id}.m4a" length="{ep.path.stat().st_size}" type="audio/mp4"' in xml
        assert 'type="audio/mpeg"' in xml  # the mp3 episode keeps its type
        url = f"http://127.0.0.1:{channel.port}/audio/{ep.id}"
        async with http.get(f"{url}.m4a") as whole:
            assert whole.status == 200 and whole.headers["Content-Type"] == "audio/mp4"
            assert await whole.read() == ep.path.read_bytes()
        async with http.get(f"{url}.mp3") as wrong_suffix:
            assert wrong_suffix.status == 404
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "yt_dlp", "-f", "bestaudio/best", "--use-extractors", "generic"),
            *("--playlist-items", "1", "-o", str(tmp_path / "dl" / "%(id)s.%(ext)s"), channel.feed_url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode(errors="replace")
    assert (tmp_path / "dl" / f"{ep.id}.m4a").read_bytes() == ep.path.read_bytes()
