"""One run of the pipeline: its context, budgets and monitor (``open_run``), then every stage in
one TaskGroup (``drive``). ``Engine`` calls these for ``stream``, ``retry`` and a worker's ``work``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ytingest.config import Settings
from ytingest.db.database import Database
from ytingest.errors import StoreError
from ytingest.logs import get_logger
from ytingest.monitor.build import build_monitor
from ytingest.monitor.gpu import GpuProbe
from ytingest.monitor.monitor import Monitor
from ytingest.pipeline.budget import download_budget
from ytingest.pipeline.context import Feed, RunContext
from ytingest.pipeline.tuning import Tuning
from ytingest.pipeline.turns import turns_wanted
from ytingest.ports import Downloader, KnownVideos, ReportsProgress, Source
from ytingest.runtime import Runtime
from ytingest.sourcetext import public_url
from ytingest.stages.bulk import run_bulk
from ytingest.stages.description import Parts, Stage, inbox_for, metrics_for, wire
from ytingest.stages.discover import Listing
from ytingest.stages.disk import DiskBudget, clean_leftovers
from ytingest.stages.download import DownloadPolicy, GlobalGate
from ytingest.stages.pause import SharedBackoff
from ytingest.stages.resume import use_checkpoints
from ytingest.stages.transcribe import run_settings

log = get_logger()


@dataclass(frozen=True, slots=True)
class Sources:
    """Where a run's videos come from: the lister (a channel's, or the retry's list) and what it
    selects (None: a worker's claims feed the pipeline instead), and the downloader."""

    lister: Source
    downloader: Downloader
    listing: Listing | None = None


async def open_run(
    label: str,
    runtime: Runtime,
    db: Database,
    pipeline: Sequence[Stage],
    sources: Sources,
    *,
    stopping: asyncio.Event,
    gate: GlobalGate | None = None,
) -> tuple[Parts, Monitor]:
    """Load the models, build the run's context (counters, budgets, checkpoints) and its monitor,
    and start the decoder processes; nothing has been downloaded yet."""
    transcriber, embedder = await runtime.transcriber(), await runtime.embedder()
    s = run_settings(runtime.settings, transcriber)  # ASR_BATCH_SIZE as fitted to the device
    await db.check_dim(embedder.dim)
    tagger = await runtime.speaker_tagger(db)
    await asyncio.to_thread(s.audio_dir.mkdir, parents=True, exist_ok=True)
    if sources.listing is not None:
        await db.register_channel(label)
    ctx = RunContext(s, db, metrics_for(pipeline, s), stopping=stopping)
    ctx.turns.enabled = turns_wanted(s.model_turns, getattr(transcriber, "device", "cpu"))
    await asyncio.to_thread(clean_leftovers, s.audio_dir, keep_audio=s.keep_audio)
    disk = DiskBudget(s.audio_dir, s.max_audio_bytes, s.min_free_bytes)
    backoff = SharedBackoff(s.rate_limit_base_s, s.rate_limit_max_s)
    lister = sources.lister  # one address, one budget; a cluster's gate has its own
    known = lister.known_videos if isinstance(lister, KnownVideos) else None
    urls = [r.webpage_url or r.url for r in known] if known is not None else [label]
    ctx.budget = None if gate else download_budget(s, urls)
    policy = DownloadPolicy(ctx.tuning.downloads, backoff, disk, gate or ctx.budget)
    ctx.metrics.disk = disk
    monitor = build_monitor(s, ctx, backoff, runtime.gpu or GpuProbe())
    if isinstance(sources.downloader, ReportsProgress):
        sources.downloader.on_progress = ctx.metrics.download.progress
    log.info(
        "run_started",
        channel=public_url(label),  # the credential in a channel URL goes to yt-dlp only
        **(sources.listing.to_log() if sources.listing else {}),
        mode=s.mode,
        stages=[st.name for st in pipeline],
        **ctx.tuning.to_dict(),
        asr_workers=s.asr_workers,
        db_workers=s.db_workers,
    )
    prepare = await runtime.prepare(s, transcriber)
    use_checkpoints(ctx, db, prepare, transcriber.name, embedder.name, tagger.model if tagger else "")
    parts = Parts(
        ctx=ctx,
        discoverer=sources.lister,
        downloader=sources.downloader,
        transcriber=transcriber,
        tagger=tagger,
        embedder=embedder,
        policy=policy,
        asr_pool=runtime.asr_pool,
        prepare=prepare,
        embed_pool=runtime.embed_pool,
        speaker_pool=runtime.speaker_pool,
    )
    return parts, monitor


async def drive(
    parts: Parts, pipeline: Sequence[Stage], monitor: Monitor, label: str, feed: Feed, listing: Listing | None
) -> None:
    """Every stage at once in one TaskGroup (or bulk's waves, MODE=bulk with a listing), until
    the feed ends and the last stage has stored its last video."""
    ctx, s = parts.ctx, parts.ctx.settings
    async with asyncio.TaskGroup() as tg:
        tg.create_task(monitor.run(ctx.finished), name="monitor")
        if s.mode == "bulk" and listing is not None:
            tg.create_task(run_bulk(parts, pipeline, label, listing), name="bulk")
        else:  # streaming: every stage at once
            first = inbox_for(pipeline[0], s)
            tg.create_task(feed(ctx, first), name="feed")
            wire(tg, parts, pipeline, first, finished=ctx.finished)


async def build_search_index(db: Database, *, stopping: bool) -> None:
    """The HNSW and full-text indexes, once the rows are in; a stopping run, or a database that
    fails here, leaves them to the next run (every video is stored; search scans without them)."""
    t0 = time.monotonic()
    try:
        if not stopping and await db.ensure_search_index():
            log.info("search_index_built", ms=round(1000 * (time.monotonic() - t0)))
    except StoreError as exc:
        log.warning("search_index_deferred", reason=str(exc))


def knobs(settings: Settings, ctx: RunContext | None) -> dict[str, Any]:
    """The knobs now: the run's live tuning while one runs, else the settings."""
    live = (ctx.tuning if ctx is not None else Tuning.from_settings(settings)).to_dict()
    return {
        **live,
        "asr_workers": settings.asr_workers,
        "db_workers": settings.db_workers,
        "autotune": settings.autotune_enabled,
    }


def status_document(
    settings: Settings, ctx: RunContext | None, monitor: Monitor | None, cluster: dict[str, Any] | None
) -> dict[str, Any]:
    """What ``/status`` serves while a run is under way (or none has run): the latest snapshot,
    the knobs and, in a cluster, its totals. A finished run's document is its ``last-run.json``."""
    snap = monitor.latest.to_dict() if monitor is not None and monitor.latest is not None else None
    return {
        "state": "running" if ctx is not None else "idle",
        "snapshot": snap,
        "knobs": knobs(settings, ctx),
        **({"cluster": cluster} if cluster is not None else {}),
    }
