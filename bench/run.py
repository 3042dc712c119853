"""Streaming vs sequential on the same throttled local channel, measured side by side in one run.

    make bench                      # 12 episodes at 32 KB/s per connection
    python -m bench.run --episodes 24 --bandwidth 16000

(a) sequential: download → transcribe → embed → store, one video at a time, with the same
    components and models as (b);
(b) ytingest streaming (Engine.stream, default settings).
Prints wall times and the ratio, and writes bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from ytingest import Engine, Settings
from ytingest.db.database import Database
from ytingest.db.embedded import EmbeddedPostgres
from ytingest.items import EmbeddedTranscript, Transcript
from ytingest.models.asr import WhisperTranscriber
from ytingest.models.embedder import SentenceEmbedder
from ytingest.stages.discover import YtDlpDiscoverer
from ytingest.stages.download import YtDlpDownloader
from ytingest.testing import ChannelServer, Episode, sample_episodes

RESULTS = Path(__file__).parent / "results"


def channel_of(n: int) -> list[Episode]:
    """``n`` episodes cycling through the bundled samples, each with its own id."""
    base = sample_episodes()
    return [replace(base[i % len(base)], id=f"{base[i % len(base)].id}-{i:03d}") for i in range(n)]


async def new_database(server_dsn: str, name: str) -> str:
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    head, _, query = server_dsn.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


async def sequential(settings: Settings, url: str, asr: WhisperTranscriber, emb: SentenceEmbedder) -> float:
    """One video at a time through the same components."""
    db = Database(settings.database_url.get_secret_value() if settings.database_url else "")
    await db.connect()
    await db.migrate(emb.dim)
    settings.audio_dir.mkdir(parents=True, exist_ok=True)
    downloader = YtDlpDownloader(settings.ytdlp_command)
    t0 = time.perf_counter()
    await db.register_channel(url)
    async for ref in YtDlpDiscoverer(settings.ytdlp_command).discover(url):
        await db.register_video(ref)
        audio = await downloader.download(ref, settings.audio_dir)
        result = await asyncio.to_thread(asr.transcribe, audio.path)
        audio.path.unlink()
        vectors = await asyncio.to_thread(emb.encode, [s.text for s in result.segments])
        transcript = Transcript(ref, result.segments, result.audio_seconds)
        await db.store_transcript(
            EmbeddedTranscript(transcript, vectors), asr_model=asr.name, embed_model=emb.name
        )
    wall = time.perf_counter() - t0
    await db.close()
    return wall


async def streaming(
    settings: Settings, url: str, asr: WhisperTranscriber, emb: SentenceEmbedder
) -> tuple[float, dict[str, Any]]:
    async with Engine(settings, transcriber=asr, embedder=emb) as engine:
        t0 = time.perf_counter()
        summary = await engine.stream(url)
        wall = time.perf_counter() - t0
    return wall, summary.to_dict()


async def main(episodes: int, bandwidth: int) -> dict[str, Any]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # quiet: errors only
    asr = WhisperTranscriber("bundled")
    emb = SentenceEmbedder("bundled")
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg")
        server = await pg.start()
        try:
            async with ChannelServer(channel_of(episodes), bandwidth=bandwidth) as channel:
                seq_settings = Settings(
                    ytingest_home=Path(tmp) / "seq", database_url=await new_database(server, "bench_seq")
                )
                stream_settings = Settings(
                    ytingest_home=Path(tmp) / "stream",
                    database_url=await new_database(server, "bench_stream"),
                )
                t_seq = await sequential(seq_settings, channel.feed_url, asr, emb)
                t_stream, summary = await streaming(stream_settings, channel.feed_url, asr, emb)
        finally:
            await pg.stop()
    audio = summary["audio_seconds"]
    result = {
        "episodes": episodes,
        "bandwidth_bytes_per_s": bandwidth,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "wall_seconds": {"sequential": round(t_seq, 2), "stream": round(t_stream, 2)},
        "audio_seconds_per_second": {
            "sequential": round(audio / t_seq, 2),
            "stream": round(audio / t_stream, 2),
        },
        "ratios": {"stream_vs_sequential": round(t_seq / t_stream, 2)},
        "stream_summary": summary,
    }
    return result


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--bandwidth", type=int, default=32_000, help="bytes/s per connection")
    args = parser.parse_args()
    result = asyncio.run(main(args.episodes, args.bandwidth))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    w = result["wall_seconds"]
    print(f"{args.episodes} episodes, {args.bandwidth} B/s per connection")
    print(f"  sequential {w['sequential']:7.1f} s   streaming {w['stream']:7.1f} s")
    print(f"  streaming is {result['ratios']['stream_vs_sequential']:.2f}x faster than sequential")
    print(f"  wrote {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    cli()
