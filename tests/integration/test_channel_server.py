"""The local channel's audio answers HTTP Range requests, as real hosts do (browsers' players seek)."""

from __future__ import annotations

import aiohttp

from ytingest.testing import ChannelServer, sample_episodes


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
