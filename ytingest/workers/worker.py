"""``run_worker``: one cluster worker — register, claim videos from the queue, process them, stop.

The whole pipeline runs here as it does for ``stream`` (its own monitor and autotuner), fed by
the job queue (``claims.ClaimFeed``) and with downloads under the cluster's shared budget
(``gate.DownloadGate``). The audio stays on this box: a worker downloads what it claims.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket

from ytingest.engine import Engine
from ytingest.errors import ConfigError, StoreError
from ytingest.items import RunSummary
from ytingest.logs import get_logger
from ytingest.workers.claims import ClaimFeed, clean_dead_workers
from ytingest.workers.gate import DownloadGate

log = get_logger()


def default_name() -> str:
    """``<host>-<pid>``: unique on a box and across boxes, and a safe folder name."""
    host = re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()).strip("-.") or "host"
    return f"{host[:48]}-{os.getpid()}"


async def run_worker(engine: Engine, *, until_empty: bool, gpu: str | None = None) -> RunSummary:
    """Work as ``engine.settings.worker_name`` until the queue is empty (``until_empty``) or a
    signal stops the engine; return the run's summary."""
    s, db = engine.settings, engine.database
    if s.worker_name is None:  # it names the worker's own audio folder too: set before the engine starts
        raise ConfigError("a worker needs a name (WORKER_NAME; the CLI's --name defaults to <host>-<pid>)")
    name = s.worker_name
    host, pid = socket.gethostname(), os.getpid()
    await db.register_worker(name, host=host, pid=pid, gpu=gpu, lease_s=s.worker_lease_s)
    live = await db.live_worker_names(lease_s=s.worker_lease_s)
    removed = await asyncio.to_thread(clean_dead_workers, s.ytingest_home / "workers", live, name)
    if removed:
        log.info("dead_workers_cleaned", workers=removed)
    log.info(
        "worker_started",
        worker=name,
        gpu=gpu,
        until_empty=until_empty,
        claims=s.worker_claims,
        lease_s=s.worker_lease_s,
        download_concurrency_global=s.download_concurrency_global,
        download_rate_global=s.download_rate_global,
    )
    feed = ClaimFeed(db, name, until_empty)
    per_hour = s.download_rate_global or 0.0  # unset in a cluster: no pace (workers may have many addresses)
    gate = DownloadGate(db, concurrency=s.download_concurrency_global, per_hour=per_hour)
    engine.cluster_view = lambda: feed.view
    await gate.open()
    try:
        return await engine.work(feed, gate=gate, name=name)
    finally:
        engine.cluster_view = None
        await gate.close()
        try:
            await db.worker_beat(
                name,
                state="stopped",
                in_flight=0,
                done=feed.outcomes["stored"],
                failed=feed.outcomes["failed"],
            )
        except StoreError as exc:
            log.warning("worker_stop_unrecorded", worker=name, reason=str(exc))
