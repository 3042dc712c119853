"""Autotune vs pinned IO_WORKERS on the same throttled channel, side by side in one run.

    python -m bench.autotune                     # 16 episodes, 12 KB/s per connection, start at 2
    python -m bench.autotune --episodes 24 --bandwidth 8000 --start 2

Both runs use the same models and start with IO_WORKERS=2; one is pinned there, the other
lets the monitor raise it while downloads starve ASR. Prints the ratio and writes
bench/results/autotune.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

from bench.run import RESULTS, channel_of, new_database
from ytingest import Engine, Settings
from ytingest.db.embedded import EmbeddedPostgres
from ytingest.models.asr import WhisperTranscriber
from ytingest.models.embedder import SentenceEmbedder
from ytingest.testing import ChannelServer


async def one_run(
    settings: Settings, url: str, asr: WhisperTranscriber, emb: SentenceEmbedder
) -> dict[str, Any]:
    with structlog.testing.capture_logs() as events:
        async with Engine(settings, transcriber=asr, embedder=emb) as engine:
            t0 = time.perf_counter()
            summary = await engine.stream(url)
            wall = time.perf_counter() - t0
            busy = [s.stages["asr"].busy for s in engine.monitor.history] if engine.monitor else []
    tunes = [(e["before"], e["after"]) for e in events if e["event"] == "tune"]
    verdicts = [e["stage"] for e in events if e["event"] == "bottleneck"]
    asr_busy = round(sum(busy) / max(len(busy), 1), 2)
    return {
        "wall_seconds": round(wall, 2),
        "done": summary.done,
        "asr_busy_mean": asr_busy,
        "tune_steps": tunes,
        "verdicts": verdicts,
    }


async def main(episodes: int, bandwidth: int, start: int) -> dict[str, Any]:
    asr, emb = WhisperTranscriber("bundled"), SentenceEmbedder("bundled")
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg")
        server = await pg.start()
        try:
            async with ChannelServer(channel_of(episodes), bandwidth=bandwidth) as channel:
                runs = {}
                for name, autotune in (("pinned", False), ("autotune", True)):
                    cfg = Settings(
                        ytingest_home=Path(tmp) / name,
                        io_workers=start,
                        autotune=autotune,
                        database_url=await new_database(server, f"bench_{name}"),
                    )
                    runs[name] = await one_run(cfg, channel.feed_url, asr, emb)
        finally:
            await pg.stop()
    ratio = runs["pinned"]["wall_seconds"] / runs["autotune"]["wall_seconds"]
    return {
        "episodes": episodes,
        "bandwidth_bytes_per_s": bandwidth,
        "start_io_workers": start,
        "runs": runs,
        "ratios": {"autotune_vs_pinned": round(ratio, 2)},
    }


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.autotune")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--bandwidth", type=int, default=12_000, help="bytes/s per connection")
    parser.add_argument("--start", type=int, default=2, help="IO_WORKERS both runs start with")
    args = parser.parse_args()
    result = asyncio.run(main(args.episodes, args.bandwidth, args.start))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "autotune.json").write_text(json.dumps(result, indent=2) + "\n")
    p, a = result["runs"]["pinned"], result["runs"]["autotune"]
    print(
        f"{args.episodes} episodes at {args.bandwidth} B/s per connection, IO_WORKERS starts at {args.start}"
    )
    print(f"  pinned   {p['wall_seconds']:7.1f} s  ASR busy {p['asr_busy_mean']:.0%}")
    print(
        f"  autotune {a['wall_seconds']:7.1f} s  ASR busy {a['asr_busy_mean']:.0%}  steps {a['tune_steps']}"
    )
    print(f"  autotune is {result['ratios']['autotune_vs_pinned']:.2f}x faster than pinned")


if __name__ == "__main__":
    cli()
