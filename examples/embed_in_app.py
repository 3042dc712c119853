"""Run ytingest inside another asyncio application.

    python examples/embed_in_app.py              # ingests the bundled sample channel
    python examples/embed_in_app.py <channel-url> [limit]

The Engine takes a Settings object (built here in code; the CLI builds it from the
environment) and never configures logging: the host application decides.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ytingest import Engine, Settings
from ytingest.testing import ChannelServer


async def ingest(url: str, limit: int | None) -> None:
    settings = Settings(ytingest_home=Path(".demo-example"), io_workers=4)
    async with Engine(settings) as engine:
        # the host app keeps doing its own work while the channel streams in
        heartbeat = asyncio.create_task(_heartbeat())
        try:
            summary = await engine.stream(url, limit=limit)
        finally:
            heartbeat.cancel()
        print(f"stored {summary.done} videos, {summary.segments} segments, {summary.failed} failed")
        for hit in await engine.search("how does a vector index find similar sentences", limit=3):
            print(f"{hit.score:.2f} {hit.title}: {hit.text}  ({hit.url})")


async def _heartbeat() -> None:
    while True:
        await asyncio.sleep(2)
        print("host app is still responsive")


async def main() -> None:
    if len(sys.argv) > 1:
        await ingest(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
        return
    async with ChannelServer() as channel:  # the bundled sample channel on 127.0.0.1
        await ingest(channel.feed_url, None)


if __name__ == "__main__":
    asyncio.run(main())
