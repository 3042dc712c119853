"""CPU per yt-dlp child, with and without the extractor hint, on the same local files in one run.

    python -m bench.ytdlp_cpu            # 5 samples x 3 rounds, unthrottled local server

Each download is one real yt-dlp child; its CPU is read from RUSAGE_CHILDREN around it.
Plain and hinted runs alternate so that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

from ytingest.testing import ChannelServer, sample_episodes
from ytingest.ytdlp.downloader import YtDlpDownloader
from ytingest.ytdlp.lister import YtDlpDiscoverer

YTDLP = (sys.executable, "-m", "yt_dlp")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


async def main(rounds: int) -> None:
    cpu = {False: 0.0, True: 0.0}
    wall = {False: 0.0, True: 0.0}
    n = 0
    async with ChannelServer(sample_episodes()) as channel:
        refs = [r async for r in YtDlpDiscoverer(YTDLP).discover(channel.feed_url)]
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(rounds):
                for ref in refs:
                    n += 1
                    for hinted in (False, True):
                        dest = Path(tmp) / f"{hinted}-{n}"
                        dest.mkdir()
                        c0, t0 = _children_cpu(), time.perf_counter()
                        await YtDlpDownloader(YTDLP, pick_extractor=hinted).download(ref, dest)
                        cpu[hinted] += _children_cpu() - c0
                        wall[hinted] += time.perf_counter() - t0
    print(f"{n} downloads each way (yt-dlp children, local server)")
    for hinted, name in ((False, "yt-dlp searches"), (True, "extractor hint")):
        per_cpu, per_wall = 1000 * cpu[hinted] / n, 1000 * wall[hinted] / n
        print(f"  {name:16s} CPU {per_cpu:6.0f} ms/download   wall {per_wall:6.0f} ms")
    print(f"  CPU ratio hint/plain: {cpu[True] / cpu[False]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.ytdlp_cpu")
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args().rounds))
