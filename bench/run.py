"""Sequential vs 3-phase bulk vs streaming vs ASR alone, on one throttled local channel, in one run.

    make bench                                  # 12 episodes at 16 KB/s per connection
    python -m bench.run --quick                 # 6 episodes (CI-sized)
    python -m bench.run --episodes 24 --bandwidth 16000

(a) sequential: download → transcribe → embed → store, one video at a time, same components;
(b) bulk: Engine with MODE=bulk (download all, then ASR all, then embed + store all);
(c) stream: Engine.stream with default settings;
(d) asr_only: decode + ASR alone on the same files, already on disk (this machine's ceiling).
Also: streaming again on the same channel and on a 4x channel, each in a fresh process, so their
peak RSS compare (memory must not grow with the channel) and the 4x run shows the rate once the
first downloads' wait is amortised; the sink ratio (the store stage with every video waiting vs
raw ``copy_records_to_table`` of the same rows in the same groups, into a fresh database and into
one that already has its HNSW and full-text indexes) and the embed ratio (in the 4x run: the pipeline's encode
rate vs plain ``model.encode`` on the same batches, alone, in the same process).
Writes bench/results/latest.json and latest.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from bench.measure import Peaks, RecordingEmbedder, sink_replay, stored_items
from ytingest import Engine, Settings
from ytingest.db.database import Database
from ytingest.db.embedded import EmbeddedPostgres
from ytingest.db.search import SEARCH_INDEXES
from ytingest.items import EmbeddedTranscript, Transcript
from ytingest.models.asr import WhisperTranscriber
from ytingest.models.embedder import SentenceEmbedder
from ytingest.testing import ChannelServer, Episode, sample_episodes
from ytingest.ytdlp.downloader import YtDlpDownloader
from ytingest.ytdlp.lister import YtDlpDiscoverer

RESULTS = Path(__file__).parent / "results"
MODES = ("sequential", "bulk", "stream", "asr_only")


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


async def sequential(settings: Settings, url: str, asr: WhisperTranscriber, emb: Any) -> dict[str, Any]:
    """One video at a time through the same components."""
    db = Database(settings.database_url.get_secret_value() if settings.database_url else "")
    await db.connect()
    await db.migrate(emb.dim)
    settings.audio_dir.mkdir(parents=True, exist_ok=True)
    downloader = YtDlpDownloader(settings.ytdlp_command)
    audio_s = asr_busy = 0.0
    with Peaks(settings.audio_dir) as peaks:
        t0 = time.perf_counter()
        await db.register_channel(url)
        async for ref in YtDlpDiscoverer(settings.ytdlp_command).discover(url):
            await db.register_video(ref)
            audio = await downloader.download(ref, settings.audio_dir)
            t1 = time.perf_counter()
            result = await asyncio.to_thread(asr.transcribe, audio.path)
            asr_busy += time.perf_counter() - t1
            audio.path.unlink()
            vectors = await asyncio.to_thread(emb.encode, [s.text for s in result.segments])
            transcript = Transcript(ref, result.segments, result.audio_seconds)
            await db.store_transcript(
                EmbeddedTranscript(transcript, vectors), asr_model=asr.name, embed_model=emb.name
            )
            audio_s += result.audio_seconds
        wall = time.perf_counter() - t0
    await db.close()
    return _row(wall, audio_s, asr_busy / wall, peaks)


def repeated(items: list[EmbeddedTranscript], rows: int) -> list[EmbeddedTranscript]:
    """``items`` again and again under new video ids until there are ``rows`` rows (a sink rate
    from a few dozen rows would be decided by one-off costs such as preparing statements)."""
    out: list[EmbeddedTranscript] = []
    if not any(it.transcript.segments for it in items):
        return items
    while sum(len(it.transcript.segments) for it in out) < rows:
        for it in items:
            t = it.transcript
            ref = replace(t.video, id=f"{t.video.id}-r{len(out)}")
            out.append(EmbeddedTranscript(replace(t, video=ref), it.vectors))
    return out


async def engine_run(settings: Settings, url: str, asr: WhisperTranscriber, emb: Any) -> dict[str, Any]:
    """Engine.stream in the mode ``settings`` names; ASR busy fraction from the monitor's counters."""
    async with Engine(settings, transcriber=asr, embedder=emb) as engine:
        with Peaks(settings.audio_dir) as peaks:
            t0 = time.perf_counter()
            summary = await engine.stream(url)
            wall = time.perf_counter() - t0
        assert engine.monitor is not None
        c = engine.monitor.sampler.metrics.stages
        busy = c["asr"].busy_seconds_now() / (wall * settings.asr_workers)
        store_busy, embed_busy = c["store"].busy_seconds_now(), c["embed"].busy_seconds_now()
    row = _row(wall, summary.audio_seconds, busy, peaks)
    row.update(
        done=summary.done,
        failed=summary.failed,
        segments=summary.segments,
        store_busy_s=store_busy,
        embed_busy_s=embed_busy,
    )
    return row


def stream_in_child(dsn: str, feed_url: str, home: str) -> dict[str, Any]:
    """Engine.stream with default settings in this (fresh) process: its peak RSS is the run's alone."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    defaults = Settings()
    asr = WhisperTranscriber("bundled", batching=defaults.asr_batching, batch_size=defaults.asr_batch_size)
    emb = RecordingEmbedder(SentenceEmbedder("bundled"))
    settings = Settings(ytingest_home=Path(home), database_url=dsn)
    row = asyncio.run(engine_run(settings, feed_url, asr, emb))
    row["embed_rows_per_s"] = sum(map(len, emb.batches)) / row["embed_busy_s"]
    row["embed_raw_rows_per_s"] = emb.raw_rate()
    return row


async def in_fresh_process(dsn: str, feed_url: str, home: Path) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        return await asyncio.get_running_loop().run_in_executor(
            pool, stream_in_child, dsn, feed_url, str(home)
        )


async def asr_only(episodes: list[Episode], asr: WhisperTranscriber, batch: int) -> dict[str, Any]:
    """Decode + VAD + ASR of the files, already local, the way the transcribe stage groups them."""
    paths = [e.path for e in episodes]
    t0 = time.perf_counter()
    seconds = 0.0
    for i in range(0, len(paths), batch if asr.batching == "cross" else 1):
        prepared = [asr.prepare(p) for p in paths[i : i + (batch if asr.batching == "cross" else 1)]]
        seconds += sum(r.audio_seconds for r in asr.transcribe_prepared(prepared))
    wall = time.perf_counter() - t0
    return {
        "wall_s": round(wall, 2),
        "audio_s_per_s": round(seconds / wall, 2),
        "asr_busy": 1.0,
        "peak_audio_bytes": 0,
        "peak_rss_bytes": 0,
        "median_rss_bytes": 0,
    }


def _row(wall: float, audio_s: float, busy: float, peaks: Peaks) -> dict[str, Any]:
    return {
        "wall_s": round(wall, 2),
        "audio_s_per_s": round(audio_s / wall, 2),
        "asr_busy": round(busy, 3),
        "peak_audio_bytes": peaks.audio,
        "peak_rss_bytes": peaks.rss,
        "median_rss_bytes": peaks.rss_median,
    }


async def main(episodes: int, bandwidth: int, scale: int) -> dict[str, Any]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # quiet: errors only
    defaults = Settings()
    asr = WhisperTranscriber("bundled", batching=defaults.asr_batching, batch_size=defaults.asr_batch_size)
    emb = SentenceEmbedder("bundled")
    eps = channel_of(episodes)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg")
        server = await pg.start()

        async def settings(name: str, **kw: Any) -> Settings:
            dsn = await new_database(server, f"bench_{name}")
            return Settings(ytingest_home=Path(tmp) / name, database_url=dsn, **kw)

        try:
            asr.transcribe(eps[0].path)  # warm-up
            rows["asr_only"] = await asr_only(eps, asr, defaults.asr_batch_size)
            async with ChannelServer(eps, bandwidth=bandwidth) as channel:
                rows["sequential"] = await sequential(await settings("seq"), channel.feed_url, asr, emb)
                rows["bulk"] = await engine_run(
                    await settings("bulk", mode="bulk"), channel.feed_url, asr, emb
                )
                stream_cfg = await settings("stream")
                rows["stream"] = await engine_run(stream_cfg, channel.feed_url, asr, emb)
            for name, n in (("stream_x1", episodes), (f"stream_x{scale}", episodes * scale)):
                async with ChannelServer(channel_of(n), bandwidth=bandwidth) as chan:
                    dsn = await new_database(server, f"bench_{name}")
                    rows[name] = await in_fresh_process(dsn, chan.feed_url, Path(tmp) / name)
            assert stream_cfg.database_url is not None
            items = repeated(await stored_items(stream_cfg.database_url.get_secret_value()), 10_000)
            sink = {}
            for name, indexes in (("fresh", ()), ("indexed", tuple(SEARCH_INDEXES))):
                dsn = await new_database(server, f"bench_sink_{name}")
                sink[name] = await sink_replay(dsn, items, emb.dim, indexes=indexes)
        finally:
            await pg.stop()
    a, b, c, d = (rows[m]["wall_s"] for m in MODES)
    big = rows[f"stream_x{scale}"]
    return {
        "episodes": episodes,
        "bandwidth_bytes_per_s": bandwidth,
        "audio_seconds": round(sum(e.duration for e in eps), 1),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "settings": {
            "asr_batching": defaults.asr_batching,
            "asr_batch_size": defaults.asr_batch_size,
            "io_workers": defaults.io_workers,
            "asr_workers": defaults.asr_workers,
        },
        "modes": rows,
        "ratios": {
            "stream_vs_asr_only": round(d / c, 3),
            "stream_vs_bulk": round(b / c, 3),
            "stream_vs_sequential": round(a / c, 3),
            "sink_vs_raw_copy": round(sink["fresh"]["same"] / sink["fresh"]["store"], 3),
            "sink_vs_raw_copy_indexed": round(sink["indexed"]["same"] / sink["indexed"]["store"], 3),
            "sink_vs_bare_copy": round(sink["fresh"]["bare"] / sink["fresh"]["store"], 3),
            "embed_vs_raw_encode": round(big["embed_rows_per_s"] / big["embed_raw_rows_per_s"], 3),
            f"stream_x{scale}_vs_asr_only": round(
                rows[f"stream_x{scale}"]["audio_s_per_s"] / rows["asr_only"]["audio_s_per_s"], 3
            ),
        },
        "peak_audio_bytes": {
            "stream": rows["stream"]["peak_audio_bytes"],
            "bulk": rows["bulk"]["peak_audio_bytes"],
        },
        "peak_rss_bytes": {  # each in a fresh process
            f"stream_{episodes}": rows["stream_x1"]["peak_rss_bytes"],
            f"stream_{episodes * scale}": rows[f"stream_x{scale}"]["peak_rss_bytes"],
        },
        "median_rss_bytes": {
            f"stream_{episodes}": rows["stream_x1"]["median_rss_bytes"],
            f"stream_{episodes * scale}": rows[f"stream_x{scale}"]["median_rss_bytes"],
        },
        "sink_rows_per_s": {  # store stage / raw COPY into a same-shaped table / into a bare table
            db: {k: round(t["rows"] / t[k]) for k in ("store", "same", "bare")} for db, t in sink.items()
        },
        "embed": {  # measured in the 4x run (more encode calls than the 1x run has)
            "pipeline_rows_per_s": round(big["embed_rows_per_s"], 1),
            "raw_rows_per_s": round(big["embed_raw_rows_per_s"], 1),
        },
    }


def chart(result: dict[str, Any], path: Path) -> None:
    """Wall time and audio-s/s per mode, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["modes"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.bar(names, [result["modes"][n]["wall_s"] for n in names], color="tab:blue")
    left.set_ylabel("wall time (s)")
    right.bar(names, [result["modes"][n]["audio_s_per_s"] for n in names], color="tab:green")
    right.set_ylabel("audio seconds per second")
    fig.suptitle(f"{result['episodes']} episodes, {result['bandwidth_bytes_per_s']} B/s per connection")
    for ax in (left, right):
        ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--bandwidth", type=int, default=16_000, help="bytes/s per connection")
    parser.add_argument(
        "--scale", type=int, default=4, help="the RSS check's channel is this many times larger"
    )
    parser.add_argument("--quick", action="store_true", help="6 episodes, 2x scale (CI-sized)")
    args = parser.parse_args()
    if args.quick:
        args.episodes, args.scale = 6, 2
    result = asyncio.run(main(args.episodes, args.bandwidth, args.scale))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    chart(result, RESULTS / "latest.png")
    print(
        f"{args.episodes} episodes ({result['audio_seconds']} s audio), {args.bandwidth} B/s per connection"
    )
    head = ("mode", "wall s", "audio-s/s", "ASR busy", "peak audio", "peak RSS", "median RSS")
    print("  {:14s} {:>8s} {:>10s} {:>9s} {:>11s} {:>9s} {:>10s}".format(*head))
    for name, r in result["modes"].items():
        print(
            f"  {name:14s} {r['wall_s']:8.1f} {r['audio_s_per_s']:10.1f} {r['asr_busy']:9.0%} "
            f"{r['peak_audio_bytes'] / 1e6:9.2f}MB {r['peak_rss_bytes'] / 1e6:7.0f}MB "
            f"{r['median_rss_bytes'] / 1e6:8.0f}MB"
        )
    for k, v in result["ratios"].items():
        print(f"  {k:22s} {v:.2f}")
    print(f"  wrote {RESULTS / 'latest.json'} and latest.png")


if __name__ == "__main__":
    cli()
