"""3-phase bulk mode (MODE=bulk): download everything, then transcribe everything, then embed + store.

The same stage functions as streaming, run one phase at a time. Phase 1 stops starting downloads
once BULK_DISK_BUDGET_MB of audio is on disk; the three phases then repeat for the next wave, so
the disk budget holds (give or take IO_WORKERS + 2 files in flight when it was reached).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from ytingest.items import AudioFile, Transcript, VideoRef
from ytingest.logs import get_logger
from ytingest.models.speakers import SpeakerTagger
from ytingest.run import Closing, RunContext
from ytingest.stages.decode import DecodedAudio, Prepare, decode_worker
from ytingest.stages.discover import Discoverer, run_discovery
from ytingest.stages.download import Downloader, DownloadPolicy, run_downloads
from ytingest.stages.embed import Embedder, run_batcher
from ytingest.stages.store import store_worker
from ytingest.stages.transcribe import Transcriber, transcribe_worker

log = get_logger()


@dataclass(frozen=True, slots=True)
class Parts:
    """What a run's stages are made of (the engine builds it once per run)."""

    ctx: RunContext
    discoverer: Discoverer
    downloader: Downloader
    transcriber: Transcriber
    tagger: SpeakerTagger | None
    embedder: Embedder
    policy: DownloadPolicy
    asr_pool: Executor
    prepare: Prepare | None
    embed_pool: Executor


def _drain(q: asyncio.Queue[Any]) -> list[Any]:
    items = []
    while not q.empty():
        if (item := q.get_nowait()) is not None:
            items.append(item)
    return items


async def run_bulk(p: Parts, url: str, *, limit: int | None = None, skip_shorts: bool = False) -> None:
    """List the whole channel, then download / transcribe / store it in waves that fit the budget."""
    ctx = p.ctx
    try:
        listed: asyncio.Queue[VideoRef | None] = asyncio.Queue()
        await run_discovery(ctx, p.discoverer, url, listed, limit=limit, skip_shorts=skip_shorts)
        refs: list[VideoRef] = _drain(listed)
        budget = ctx.settings.bulk_disk_budget_mb * 1_000_000
        while refs and not ctx.stopping.is_set():
            files, refs = await _download_wave(p, refs, budget)
            log.info("bulk_downloaded", videos=len(files), bytes=sum(f.size for f in files), left=len(refs))
            transcripts = await _transcribe_all(p, files)
            log.info("bulk_transcribed", videos=len(transcripts))
            await _store_all(p, transcripts)
    finally:
        ctx.finished.set()


async def _download_wave(
    p: Parts, refs: list[VideoRef], budget: int
) -> tuple[list[AudioFile], list[VideoRef]]:
    """Phase 1: download until ``budget`` bytes are on disk; return the files and the refs left."""
    inbox: asyncio.Queue[VideoRef | None] = asyncio.Queue(1)
    outbox: asyncio.Queue[AudioFile | None] = asyncio.Queue()  # unbounded: the phase holds it all
    p.ctx.metrics.queues.update(io_q=inbox, asr_q=outbox)
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
        tg.create_task(run_downloads(p.ctx, p.downloader, inbox, outbox, tg, p.policy), name="download")
        tg.create_task(collect(), name="bulk-collect")
    return files, rest


async def _transcribe_all(p: Parts, files: list[AudioFile]) -> list[Transcript]:
    """Phase 2: decode (prefetched) and transcribe every downloaded file; the audio is deleted."""
    s = p.ctx.settings
    asr_q: asyncio.Queue[AudioFile | None] = asyncio.Queue()
    for f in [*files, None]:
        asr_q.put_nowait(f)
    pcm_q: asyncio.Queue[DecodedAudio | None] = asyncio.Queue(s.decode_queue_size)
    out: asyncio.Queue[Transcript | None] = asyncio.Queue()
    p.ctx.metrics.queues.update(asr_q=asr_q, embed_q=out)
    done = Closing(s.asr_workers, out)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(decode_worker(p.ctx, p.prepare, asr_q, pcm_q), name="decode")
        for i in range(s.asr_workers):
            tg.create_task(transcribe_worker(p.ctx, p.transcriber, p.tagger, p.asr_pool, pcm_q, out, done),
                           name=f"asr-{i}")  # fmt: skip
    return _drain(out)


async def _store_all(p: Parts, transcripts: list[Transcript]) -> None:
    """Phase 3: embed in micro-batches and store every transcript."""
    s = p.ctx.settings
    embed_q: asyncio.Queue[Transcript | None] = asyncio.Queue()
    for t in [*transcripts, None]:
        embed_q.put_nowait(t)
    db_q: asyncio.Queue[Any] = asyncio.Queue(s.db_queue_size)
    p.ctx.metrics.queues.update(embed_q=embed_q, db_q=db_q)
    done = Closing(s.db_workers, None)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(run_batcher(p.ctx, p.embedder, p.embed_pool, embed_q, db_q), name="embed")
        for i in range(s.db_workers):
            tg.create_task(store_worker(p.ctx, db_q, done, asr_model=p.transcriber.name,
                                        embed_model=p.embedder.name), name=f"store-{i}")  # fmt: skip
