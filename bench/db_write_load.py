"""What PostgreSQL receives per hour of audio from a real ``ytingest stream``, and how fast one
server here absorbs the store path's COPY of segments, in one run:

    python -m bench.db_write_load             # ~5 min on 2 cores; bench/results/db_write_load.json
    python -m bench.db_write_load --quick     # ~40 s: one 5-minute episode, a smaller COPY
                                              # (bench/results/db_write_load_quick.json)

(a) write load: the local channel (``ChannelServer``) serving long episodes of real speech
    (``long_channel``: AAC .m4a, 10, 15 and 20 minutes by default), ingested by the real CLI
    (``python -m ytingest stream URL --json``, SPEAKERS=false, the bundled tiny.en on CPU) into a
    fresh database of an embedded server started here (DATABASE_URL, its own YTINGEST_HOME).
    Before and after: ``pg_stat_database`` (tup_inserted/updated/deleted, xact_commit),
    ``pg_stat_wal`` (wal_bytes, records, full-page images; the whole server, nothing else runs)
    and the size of ``segments`` (heap, TOAST, indexes). Divided by the hours of audio stored
    (``sum(videos.duration)`` of the done videos). Two cases, each on its own fresh database:
    ``indexed``, the search indexes (HNSW + full-text GIN) created before the run, as in a
    cluster's database after its first load where every COPY also inserts into them; and
    ``first_load``, no index until the run builds both at its end (``ensure_search_index``), so
    its WAL includes that build. The schema is created before the "before" snapshot.
(b) COPY: the ``indexed`` run's stored videos (real text, real 384-d embeddings) repeated under
    new ids into a fresh database through the store path (``Database.store_transcripts``: DELETE,
    binary COPY, UPDATE videos; one video per transaction, as a worker stores), in stages on one
    table: ``--copy-base`` rows with no search index (a first load); the two search indexes built
    over them (timed); ``--copy-rows`` rows by 1 writer into the indexed table; 6 × that by 4
    concurrent writers; ``--copy-rows`` by 1 writer again, the HNSW graph ~4x larger; then both
    indexes dropped and built again over every row (timed: an index build after a bulk load).
    Rows/s, and the server's CPU per 1,000 rows (psutil over its processes): the writers' Python
    shares the 2 cores, so rows/s per server core is the figure that carries to a database host.

Per GPU worker, estimated, not measured here: the issue's batched large-v2 rate (~1 h of audio per
~50 s on one consumer GPU: 72 audio-hours per hour) × the per-audio-hour figures / 3600. The
segments per audio hour are tiny.en's (the bundled model); large-v2 segments the same speech
differently, so those figures are an estimate for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

from bench.measure import stored_items
from bench.run import repeated
from ytingest.db.database import Database
from ytingest.db.embedded import EmbeddedPostgres
from ytingest.db.search import SEARCH_INDEXES
from ytingest.items import EmbeddedTranscript
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.long_episodes import default_cache_dir, long_channel

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).parent.parent
DIM = 384  # the bundled all-MiniLM-L6-v2
AUDIO_HOURS_PER_GPU_HOUR = 3600 / 50  # the batched large-v2 on one consumer GPU: 1 h per ~50 s
MIB = 2**20
COPY_STAGES = ("no_index_1_writer", "indexed_1_writer", "indexed_4_writers", "indexed_1_writer_later")


def on_database(dsn: str, name: str) -> str:
    """The same server, another database (the socket directory in the query string is kept)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def server_cpu(pg_dir: Path) -> float:
    """CPU seconds of the postmaster and every process it started: those alive now, and those that
    have ended (backends, autovacuum workers: the postmaster's reaped children)."""
    postmaster = psutil.Process(int((pg_dir / "postmaster.pid").read_text().split()[0]))
    total = 0.0
    for p in [postmaster, *postmaster.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


class Cpu:
    """CPU seconds since construction: the server's, ours (and our waited-for children's), and the
    machine's busy time, so ``other_share`` tells whether something else shared the machine."""

    def __init__(self, pg_dir: Path) -> None:
        self.pg_dir = pg_dir
        self.t0, self.pg0, self.mine0, self.busy0 = time.perf_counter(), server_cpu(pg_dir), _mine(), _busy()

    def shares(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        cores = psutil.cpu_count() or 1
        pg, mine, busy = server_cpu(self.pg_dir) - self.pg0, _mine() - self.mine0, _busy() - self.busy0
        return {
            "server_cpu_s": round(pg, 2),
            "server_share": round(pg / (wall * cores), 3),
            "other_share": round((busy - pg - mine) / (wall * cores), 3),
        }


def _mine() -> float:
    """This process and its children that have ended (the CLI, its decoder, yt-dlp)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _busy() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - t.iowait)


async def snapshot(dsn: str) -> dict[str, Any]:
    """The database's counters, the server's WAL counters, and the size of ``segments``."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        db = await conn.fetchrow(
            "SELECT tup_inserted, tup_updated, tup_deleted, xact_commit, xact_rollback"
            " FROM pg_stat_database WHERE datname = current_database()"
        )
        wal = await conn.fetchrow("SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal")
        size = await conn.fetchrow(
            "SELECT pg_total_relation_size('segments') AS total, pg_relation_size('segments') AS heap,"
            " pg_indexes_size('segments') AS indexes, pg_database_size(current_database()) AS database"
        )
        rows = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM segments) AS segments,"
            " (SELECT count(*) FROM videos WHERE status = 'done') AS videos_done,"
            " (SELECT coalesce(sum(duration), 0) FROM videos WHERE status = 'done') AS duration_s,"
            " (SELECT coalesce(sum(audio_seconds), 0) FROM videos WHERE status = 'done') AS audio_s,"
            " (SELECT coalesce(avg(length(text)), 0) FROM segments) AS text_chars"
        )
    finally:
        await conn.close()
    out: dict[str, Any] = {**dict(db), **{k: int(v) for k, v in dict(wal).items()}, **dict(size)}
    out.update({k: float(v) for k, v in dict(rows).items()})
    return out


async def prepared_database(server_dsn: str, name: str, *, indexes: bool) -> str:
    """A new database with ytingest's schema (and the search indexes when ``indexes``)."""
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    dsn = on_database(server_dsn, name)
    db = Database(dsn)
    await db.connect()
    await db.migrate(DIM)
    await db.close()
    if indexes:
        conn = await asyncpg.connect(dsn)
        try:
            for sql in SEARCH_INDEXES.values():
                await conn.execute(sql)
        finally:
            await conn.close()
    return dsn


def stream(url: str, dsn: str, home: Path) -> tuple[dict[str, Any], float]:
    """``ytingest stream URL --json`` in a subprocess: its summary and wall seconds."""
    env = dict(os.environ, DATABASE_URL=dsn, YTINGEST_HOME=str(home), SPEAKERS="false")
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ytingest", "stream", url, "--json", "--log-format", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"ytingest stream exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


async def write_load(server_dsn: str, url: str, tmp: Path, pg_dir: Path, case: str) -> dict[str, Any]:
    dsn = await prepared_database(server_dsn, f"load_{case}", indexes=case == "indexed")
    before = await snapshot(dsn)
    cpu = Cpu(pg_dir)
    summary, wall = await asyncio.to_thread(stream, url, dsn, tmp / f"home_{case}")
    shares = cpu.shares()
    await asyncio.sleep(1.0)  # the CLI's server processes flush their counters as they exit
    after = await snapshot(dsn)
    delta = {k: after[k] - before[k] for k in before}
    hours = after["duration_s"] / 3600
    per_hour = {
        "segments": delta["segments"] / hours,
        "tup_inserted": delta["tup_inserted"] / hours,
        "tup_updated": delta["tup_updated"] / hours,
        "tup_deleted": delta["tup_deleted"] / hours,
        "xact_commit": delta["xact_commit"] / hours,
        "wal_bytes": delta["wal_bytes"] / hours,
        "wal_records": delta["wal_records"] / hours,
        "segments_total_bytes": delta["total"] / hours,
        "segments_heap_bytes": delta["heap"] / hours,
        "segments_index_bytes": delta["indexes"] / hours,
    }
    return {
        "case": case,
        "dsn_database": f"load_{case}",
        "cli_wall_s": round(wall, 1),
        "cpu": shares,
        "summary": summary,
        "audio_hours": round(hours, 4),
        "audio_seconds_stored": after["audio_s"],
        "videos_done": int(after["videos_done"]),
        "avg_text_chars": round(after["text_chars"], 1),
        "before": before,
        "after": after,
        "delta": delta,
        "per_audio_hour": {k: round(v, 1) for k, v in per_hour.items()},
        "bytes_per_segment_row": {
            "wal": round(delta["wal_bytes"] / delta["segments"], 1) if delta["segments"] else None,
            "segments_total": round(delta["total"] / delta["segments"], 1) if delta["segments"] else None,
        },
        "per_gpu_worker_estimate": {
            k: round(per_hour[k] * AUDIO_HOURS_PER_GPU_HOUR / 3600, 2)
            for k in ("segments", "tup_inserted", "xact_commit", "wal_bytes", "segments_total_bytes")
        },
    }


async def store_all(dsn: str, groups: list[list[EmbeddedTranscript]], pg_dir: Path) -> dict[str, float | int]:
    """Store each writer's videos, one video per transaction, the writers concurrently: rows/s and
    the server's CPU per 1,000 rows."""
    dbs = [Database(dsn, pool_size=1) for _ in groups]
    for db in dbs:
        await db.connect()

    async def writer(db: Database, items: list[EmbeddedTranscript]) -> None:
        for it in items:
            await db.store_transcripts([it], asr_model="bench", embed_model="bench")

    rows = sum(len(it.transcript.segments) for g in groups for it in g)
    meter, t0 = Cpu(pg_dir), time.perf_counter()
    await asyncio.gather(*(writer(db, g) for db, g in zip(dbs, groups, strict=True)))
    seconds, shares = time.perf_counter() - t0, meter.shares()
    cpu = shares["server_cpu_s"]
    for db in dbs:
        await db.close()
    return {
        "writers": len(groups),
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "server_cpu_ms_per_1000_rows": round(1000 * cpu / rows * 1000, 1),
        "rows_per_server_core_s": round(rows / cpu) if cpu else 0,
        "server_cpu_share": shares["server_share"],
        "other_cpu_share": shares["other_share"],
    }


async def build_indexes(dsn: str) -> dict[str, float]:
    """Create the missing search indexes; seconds per index."""
    conn = await asyncpg.connect(dsn)
    took: dict[str, float] = {}
    try:
        for name, sql in SEARCH_INDEXES.items():
            t0 = time.perf_counter()
            await conn.execute(sql)
            took[name] = round(time.perf_counter() - t0, 2)
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return took


async def copy_rate(server_dsn: str, source_dsn: str, pg_dir: Path, base: int, more: int) -> dict[str, Any]:
    """The stages, in order, on one table: ``base`` rows with no index; both indexes built over
    them; ``more`` rows by 1 writer; 6 × ``more`` by 4 writers; ``more`` by 1 writer again (the
    HNSW graph is ~4x larger by then); the indexes dropped and built again over every row."""
    items = await stored_items(source_dsn)
    stages = [("no_index_1_writer", base, 1), ("indexed_1_writer", more, 1)]
    stages += [("indexed_4_writers", 6 * more, 4), ("indexed_1_writer_later", more, 1)]
    pool = repeated(items, sum(rows for _, rows, _ in stages) + 1)
    dsn = await prepared_database(server_dsn, "copy_rate", indexes=False)
    db = Database(dsn)
    await db.connect()
    await db.register_channel("bench://copy")
    for it in pool:
        await db.register_video(it.transcript.video)
    await db.close()
    out: dict[str, Any] = {}
    at = 0
    for name, target, writers in stages:
        group: list[EmbeddedTranscript] = []  # whole videos up to the stage's rows
        while at < len(pool) and sum(len(i.transcript.segments) for i in group) < target:
            group.append(pool[at])
            at += 1
        out[name] = await store_all(dsn, [group[i::writers] for i in range(writers)], pg_dir)
        if name == "no_index_1_writer":
            out["index_build_s"] = await build_indexes(dsn)
            out["index_build_rows"] = out[name]["rows"]
    conn = await asyncpg.connect(dsn)
    try:
        out["all_rows"] = await conn.fetchval("SELECT count(*) FROM segments")
        for name in SEARCH_INDEXES:
            await conn.execute(f"DROP INDEX {name}")
    finally:
        await conn.close()
    out["index_rebuild_s"] = await build_indexes(dsn)
    out["index_rebuild_rows_per_s"] = round(out["all_rows"] / sum(out["index_rebuild_s"].values()))
    return out


def per_gpu(load: dict[str, Any], copy: dict[str, Any]) -> dict[str, Any]:
    """How many GPU workers (at the issue's 72 audio-hours per hour) one server here can take, by COPY."""
    rows_s = load["per_gpu_worker_estimate"]["segments"]
    out: dict[str, Any] = {"segment_rows_per_s_per_gpu_worker": rows_s}
    for key in COPY_STAGES:
        c = copy[key]
        out[key] = {
            "gpu_workers_at_measured_rows_per_s": round(c["rows_per_s"] / rows_s) if rows_s else None,
            "gpu_workers_per_server_core": round(c["rows_per_server_core_s"] / rows_s) if rows_s else None,
        }
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    minutes = [float(x) for x in args.minutes.split(",")]
    started = time.perf_counter()
    episodes = await asyncio.to_thread(long_channel, minutes, args.cache)
    cases = ["indexed"] if args.quick else ["indexed", "first_load"]
    with tempfile.TemporaryDirectory(prefix="db-write-load-") as tmp_name:
        tmp = Path(tmp_name)
        pg = EmbeddedPostgres(tmp / "pg")
        server_dsn = await pg.start()
        try:
            loads = []
            with serve_in_thread(ChannelServer(episodes)) as channel:
                for case in cases:
                    t = time.perf_counter()
                    loads.append(await write_load(server_dsn, channel.feed_url, tmp, tmp / "pg", case))
                    print(
                        f"# write load, {case}: {time.perf_counter() - t:.0f} s; other processes"
                        f" {loads[-1]['cpu']['other_share']:.0%} of the machine",
                        flush=True,
                    )
            t = time.perf_counter()
            copy = await copy_rate(
                server_dsn,
                on_database(server_dsn, "load_indexed"),
                tmp / "pg",
                args.copy_base,
                args.copy_rows,
            )
            print(f"# COPY rate: {time.perf_counter() - t:.0f} s", flush=True)
        finally:
            await pg.stop()
    report = {
        "machine": f"{platform.machine()} {psutil.cpu_count()} cores",
        "episodes_minutes": minutes,
        "audio_hours_per_gpu_hour": AUDIO_HOURS_PER_GPU_HOUR,
        "write_load": loads,
        "copy": copy,
        "gpu_workers_by_copy": per_gpu(loads[0], copy),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print_report(report)
    return report


def print_report(r: dict[str, Any]) -> None:
    print(
        f"\n{'case':>10} {'audio h':>7} {'rows/h':>8} {'tup ins/h':>9} {'xact/h':>7} {'WAL MB/h':>8}"
        f" {'seg MB/h':>8} {'WAL B/row':>9} {'seg B/row':>9}"
    )
    for w in r["write_load"]:
        h, b = w["per_audio_hour"], w["bytes_per_segment_row"]
        print(
            f"{w['case']:>10} {w['audio_hours']:>7.3f} {h['segments']:>8.0f} {h['tup_inserted']:>9.0f}"
            f" {h['xact_commit']:>7.0f} {h['wal_bytes'] / MIB:>8.1f} {h['segments_total_bytes'] / MIB:>8.1f}"
            f" {b['wal']:>9} {b['segments_total']:>9}"
        )
    g = r["write_load"][0]["per_gpu_worker_estimate"]
    print(
        f"\nper GPU worker (estimate, {r['audio_hours_per_gpu_hour']:.0f} audio-h/h, indexed case):"
        f" {g['segments']} rows/s, {g['wal_bytes'] / 1024:.1f} KiB/s WAL,"
        f" {g['segments_total_bytes'] / 1024:.1f} KiB/s segments growth, {g['xact_commit']} commits/s"
    )
    c = r["copy"]
    print(
        f"\nCOPY through the store path; indexes built over {c['index_build_rows']} rows in"
        f" {c['index_build_s']} s, rebuilt over {c['all_rows']} in {c['index_rebuild_s']} s:"
    )
    for key in COPY_STAGES:
        x, n = c[key], r["gpu_workers_by_copy"][key]
        print(
            f"  {key:>18}: {x['rows_per_s']:>6} rows/s, server"
            f" {x['server_cpu_ms_per_1000_rows']} CPU-ms/1000 rows ({x['rows_per_server_core_s']} rows per"
            f" server core-s): {n['gpu_workers_at_measured_rows_per_s']} GPU workers here,"
            f" {n['gpu_workers_per_server_core']} per server core; other processes {x['other_cpu_share']:.0%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.db_write_load")
    parser.add_argument("--quick", action="store_true", help="one 5-minute episode, a smaller COPY")
    parser.add_argument("--minutes", default="10,15,20", help="lengths of the channel's episodes")
    parser.add_argument("--cache", type=Path, default=default_cache_dir(), help="where episodes are made")
    parser.add_argument("--copy-base", type=int, default=20_000, help="rows stored before the indexes")
    parser.add_argument("--copy-rows", type=int, default=10_000, help="rows per 1-writer indexed stage")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.copy_base, args.copy_rows = "5", 5_000, 2_500
    report = asyncio.run(main_async(args))
    RESULTS.mkdir(exist_ok=True)
    name = "db_write_load_quick.json" if args.quick else "db_write_load.json"
    (RESULTS / name).write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"wall {report['wall_s']} s; wrote bench/results/{name}")


if __name__ == "__main__":
    main()
