"""``python -m ytingest.testing serve|demo``: the local sample channel, and the demo that ingests it."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

from ytingest.testing.channel import ChannelServer, serve_in_thread


async def _serve(port: int, bandwidth: int | None, latency: float) -> None:
    server = ChannelServer(bandwidth=bandwidth, latency=latency, port=port)
    async with server:
        print(server.feed_url, flush=True)
        await asyncio.Event().wait()


def _demo(home: Path, bandwidth: int) -> int:
    """Serve the sample channel, ingest it with the real CLI, then search it."""
    cli = [sys.executable, "-m", "ytingest"]
    env = dict(os.environ, YTINGEST_HOME=str(home))
    with serve_in_thread(ChannelServer(bandwidth=bandwidth)) as channel:
        print(f"# sample channel at {channel.feed_url} ({len(channel.episodes)} episodes)", flush=True)
        steps = [
            ["stream", channel.feed_url, "--log-format", "console"],
            ["search", "how do vector databases find similar sentences", "--limit", "3"],
            ["search", "why does coffee keep me awake at night", "--limit", "3"],
            ["speakers"],  # no voices enrolled: each voice of the channel is an unknown-N
            ["status"],
        ]
        for step in steps:
            print(f"\n$ ytingest {' '.join(step)}", flush=True)
            rc = subprocess.run([*cli, *step], env=env, check=False).returncode
            if rc not in (0, 1):
                return rc
    print(f"\n# data is in {home}; run the same stream again and every video is skipped.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m ytingest.testing")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the sample channel until Ctrl-C")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--bandwidth", type=int, help="bytes/s per connection")
    p.add_argument("--latency", type=float, default=0.0)
    p = sub.add_parser("demo", help="serve the sample channel, ingest it, search it")
    p.add_argument("--home", type=Path, default=Path(".demo"))
    p.add_argument("--bandwidth", type=int, default=64_000)
    args = parser.parse_args()
    if args.command == "serve":
        try:
            asyncio.run(_serve(args.port, args.bandwidth, args.latency))
        except KeyboardInterrupt:
            pass
        return 0
    return _demo(args.home.resolve(), args.bandwidth)


if __name__ == "__main__":
    raise SystemExit(main())
