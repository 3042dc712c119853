"""3-phase bulk mode (MODE=bulk): download everything, then transcribe everything, then embed + store.

The same pipeline description as streaming, cut into three slices by the bulk phase each stage
declares (``description.Phase``), run one at a time. Phase 1 stops starting downloads once
BULK_DISK_BUDGET_MB of audio is on disk; the three phases then repeat for the next wave, so the
disk budget holds (give or take IO_WORKERS + 2 files in flight when it was reached).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ytingest.items import AudioFile, LabelledWindow, VideoRef
from ytingest.logs import get_logger
from ytingest.stages.description import Parts, Stage, inbox_for, phases, wire
from ytingest.stages.discover import Listing, run_discovery

log = get_logger()


def _drain(q: asyncio.Queue[Any]) -> list[Any]:
    items = []
    while not q.empty():
        if (item := q.get_nowait()) is not None:
            items.append(item)
    return items


async def run_bulk(p: Parts, stages: Sequence[Stage], url: str, listing: Listing | None = None) -> None:
    """List the whole channel, then download / transcribe / store it in waves that fit the budget."""
    ctx = p.ctx
    fetch, transcribe, store = phases(stages)
    try:
        listed: asyncio.Queue[VideoRef | None] = asyncio.Queue()
        await run_discovery(ctx, p.discoverer, url, listed, listing or Listing())
        refs: list[VideoRef] = _drain(listed)
        budget = ctx.settings.bulk_disk_budget_mb * 1_000_000
        while refs and not ctx.stopping.is_set():
            files, refs = await _download_wave(p, fetch, refs, budget)
            log.info("bulk_downloaded", videos=len(files), bytes=sum(f.size for f in files), left=len(refs))
            windows: list[LabelledWindow] = await _run_phase(p, transcribe, files, collect=True)
            log.info("bulk_transcribed", videos=len({w.file.video.id for w in windows}), windows=len(windows))
            await _run_phase(p, store, windows, collect=False)
    finally:
        ctx.finished.set()


async def _download_wave(
    p: Parts, stages: Sequence[Stage], refs: list[VideoRef], budget: int
) -> tuple[list[AudioFile], list[VideoRef]]:
    """Phase 1: download until ``budget`` bytes are on disk; return the files and the refs left."""
    inbox = inbox_for(stages[0], p.ctx.settings, size=1)  # one at a time: the budget is checked each time
    outbox: asyncio.Queue[AudioFile | None] = asyncio.Queue()  # unbounded: the phase holds it all
    files: list[AudioFile] = []
    rest = list(refs)

    async def feed() -> None:
        while rest and sum(f.size for f in files) < budget:
            await inbox.put(rest.pop(0))
        await inbox.put(None)

    async def collect() -> None:
        while (f := await outbox.get()) is not None:
            files.append(f)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(feed(), name="bulk-feed")
        wire(tg, p, stages, inbox, outbox)
        tg.create_task(collect(), name="bulk-collect")
    return files, rest


async def _run_phase(p: Parts, stages: Sequence[Stage], items: Sequence[Any], *, collect: bool) -> list[Any]:
    """Run ``stages`` over ``items`` (all queued at once); return what the last stage hands on."""
    inbox = inbox_for(stages[0], p.ctx.settings, size=0)
    for item in [*items, None]:
        inbox.put_nowait(item)
    outbox: asyncio.Queue[Any] | None = asyncio.Queue() if collect else None
    async with asyncio.TaskGroup() as tg:
        wire(tg, p, stages, inbox, outbox)
    return _drain(outbox) if outbox is not None else []
