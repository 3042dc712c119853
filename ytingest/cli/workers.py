"""The cluster's commands: ``db start|stop|url``, ``enqueue``, ``worker``, ``workers``.

Many workers on many machines share one PostgreSQL: its job queue, ledger and segments
(docs/SCALING.md). No pipeline logic lives here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ytingest.cli.args import listing_from
from ytingest.config import Settings
from ytingest.db.database import Database
from ytingest.db.server import server_info, start_server, stop_server
from ytingest.engine import Engine
from ytingest.errors import ConfigError
from ytingest.monitor.dashboard import cluster_line
from ytingest.stages.discover import Listing
from ytingest.termtext import safe, text
from ytingest.workers.enqueue import enqueue_channel
from ytingest.workers.worker import default_name, run_worker

EXIT_OK, EXIT_FAILED = 0, 1


def prepare_worker(args: argparse.Namespace) -> None:
    """Before the settings and the engine: the worker's name (its audio folder) and its GPU."""
    if args.worker_name is None:
        args.worker_name = default_name()
    if args.gpu is not None:  # before any model loads: CUDA reads both once
        os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # N is nvidia-smi's N-th GPU (and NVML's index N)
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.gpu)


def server_dir(settings: Settings) -> Path:
    return settings.ytingest_home / "pg-server"


async def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    """start: the embedded PostgreSQL as a long-lived server, its DATABASE_URL on stdout; stop; url."""
    where = server_dir(settings)
    if args.action == "start":
        info = await asyncio.to_thread(start_server, where, port=args.port, listen=args.listen)
        print(info.url())
        print(
            f"PostgreSQL listens on {info.host}:{info.port} (data in {where}); on each worker machine:"
            " DATABASE_URL=<the URL above> ytingest worker",
            file=sys.stderr,
        )
    elif args.action == "stop":
        stopped = await asyncio.to_thread(stop_server, where)
        print("stopped" if stopped else f"no server was running in {where}")
    else:
        found = await asyncio.to_thread(server_info, where)
        if found is None:
            raise ConfigError(f"no server is running in {where}: start one with `ytingest db start`")
        print(found.url())
    return EXIT_OK


async def cmd_enqueue(engine: Engine, args: argparse.Namespace) -> int:
    result = await enqueue_channel(engine, args.url, Listing(**listing_from(args)))
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"queued {result.queued} videos; skipped {result.skipped} (stored, failed for good, or queued)")
    return EXIT_OK


async def cmd_worker(engine: Engine, args: argparse.Namespace) -> int:
    """Exit 0 when every video it took was stored (also after a SIGTERM drain), 1 when some failed
    or it stopped itself (a bot check that persists: its advice on stderr)."""
    summary = await run_worker(engine, until_empty=args.until_empty, gpu=args.gpu)
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        print(
            f"worker {engine.settings.worker_name}: done {summary.done}, failed {summary.failed},"
            f" skipped {summary.skipped}; {summary.segments} segments in {summary.wall_seconds:.1f} s"
        )
        for f in summary.failures:
            print(safe(f"  failed {f.video_id} ({f.stage}): {f.reason}"))
    if summary.halted:
        print(safe(f"ytingest: stopped: {summary.halted}"), file=sys.stderr)
    return EXIT_FAILED if summary.failed or summary.halted else EXIT_OK


async def cmd_workers(engine: Engine, args: argparse.Namespace) -> int:
    rows, totals = await _cluster(engine.database, engine.settings)
    if args.json:
        print(json.dumps({"workers": rows, "cluster": totals}, default=_jsonable))
        return EXIT_OK
    Console(width=None if sys.stdout.isatty() else 160).print(render_cluster(rows, totals))
    return EXIT_OK


async def top_database(settings: Settings, args: argparse.Namespace) -> int:
    """``top --database``: the cluster view read straight from the database (no metrics port)."""
    settings = default_database(settings)
    if settings.database_url is None:
        raise ConfigError("top --database needs the cluster's database: DATABASE_URL, or `ytingest db start`")
    db = Database(settings.database_url.get_secret_value(), pool_size=1, retry_s=settings.db_retry_s)
    await db.connect()
    try:
        frame = render_cluster(*await _cluster(db, settings))
        if args.once:
            Console(width=None if sys.stdout.isatty() else 160).print(frame)
            return EXIT_OK
        with Live(frame, console=Console(stderr=True), refresh_per_second=1) as live:
            while True:
                await asyncio.sleep(2.0)
                live.update(render_cluster(*await _cluster(db, settings)))
    finally:
        await db.close()


async def _cluster(db: Database, settings: Settings) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return await db.workers(lease_s=settings.worker_lease_s), await db.cluster_totals()


def render_cluster(rows: list[dict[str, Any]], totals: dict[str, Any]) -> Group:
    """The cluster's totals on one line, then one row per worker (``lost``: no heartbeat lately)."""
    line = cluster_line({**totals, "workers": sum(bool(r["live"]) for r in rows)})
    table = Table("name", "host", "pid", "gpu", "state", "in flight", "done", "failed", "videos/h", "seen")
    for r in rows:
        state = r["state"] if r["live"] or r["state"] == "stopped" else "lost"
        cells = (
            r["name"],
            r["host"],
            r["pid"],
            r["gpu"] or "-",
            state,
            r["in_flight"],
            r["done"],
            r["failed"],
        )
        table.add_row(
            *map(text, cells), Text(f"{r['videos_per_hour']:.1f}"), Text(f"{r['seen_s_ago']:.0f} s ago")
        )
    return Group(text(line), table)


def default_database(settings: Settings) -> Settings:
    """With DATABASE_URL unset and a ``db start`` server running in this home: that server, so
    ``db start`` then ``enqueue`` and ``worker`` on the same machine share it without a URL."""
    if settings.database_url is not None:
        return settings
    info = server_info(server_dir(settings))
    if info is None:
        return settings
    return settings.model_copy(update={"database_url": SecretStr(info.url())})


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
