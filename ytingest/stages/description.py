"""The pipeline, described once: the stages in order, each with its input queue, workers and work.

The streaming engine and bulk mode wire their queues and tasks from ``PIPELINE`` (``wire``), and
the monitor (metrics, diagnosis, dashboard, report, ``/metrics``) sees each stage through the
counters ``Metrics`` builds from it. A new stage is one entry here plus its module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from ytingest.config import Settings
from ytingest.items import (
    AudioFile,
    DecodedAudio,
    EmbeddedTranscript,
    LabelledWindow,
    TranscribedWindow,
    VideoRef,
)
from ytingest.models.speakers import SpeakerTagger
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.counters import Metrics, StageCounters
from ytingest.pipeline.queues import Closing, StageQueue
from ytingest.stages.decode import Prepare, decode_worker
from ytingest.stages.discover import Discoverer
from ytingest.stages.download import Downloader, DownloadPolicy, run_downloads
from ytingest.stages.embed import Embedder, run_batcher
from ytingest.stages.speakers import speakers_worker
from ytingest.stages.store import store_worker
from ytingest.stages.transcribe import Transcriber, transcribe_worker, window_weight


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
    speaker_pool: Executor


Work = Callable[[Parts, asyncio.Queue[Any], asyncio.Queue[Any] | None], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage: ``work(parts, inbox, outbox)`` takes items until the end marker and returns.

    ``workers`` copies of ``work`` share the inbox; ``one_task`` stages run one copy that keeps
    ``workers`` items in flight itself (downloads, under a resizable limit). The end marker is
    passed on by ``wire``, never by ``work``.
    """

    name: str  # metrics, diagnosis and the ``stage`` label of /metrics
    label: str  # the dashboard's word for it
    queue: str  # its input queue, as the one-line summary names it
    queue_size: Callable[[Settings], int]
    workers: Callable[[Settings], int]
    work: Work
    worth: Callable[[Any], float]  # audio-seconds one input item is worth
    knob: str | None = None  # the setting that gives the stage more capacity
    one_task: bool = False
    weight: Callable[[Any], int] | None = None  # what one item counts for in ``queue_size`` (None: 1)


def _ref_seconds(ref: VideoRef) -> float:
    return ref.duration or 0.0


def _file_seconds(audio: AudioFile) -> float:
    return audio.video.duration or 0.0


def _decoded_seconds(decoded: DecodedAudio) -> float:
    if decoded.prepared is not None:
        return decoded.prepared.seconds
    return decoded.file.video.duration or 0.0


def _transcribed_seconds(window: TranscribedWindow) -> float:
    return window.seconds


def _labelled_seconds(window: LabelledWindow) -> float:
    return window.result.seconds


def _embedded_seconds(item: EmbeddedTranscript) -> float:
    return item.transcript.audio_seconds


async def _download(p: Parts, inbox: asyncio.Queue[Any], outbox: asyncio.Queue[Any] | None) -> None:
    assert outbox is not None
    await run_downloads(p.ctx, p.downloader, inbox, outbox, p.policy)


async def _decode(p: Parts, inbox: asyncio.Queue[Any], outbox: asyncio.Queue[Any] | None) -> None:
    assert outbox is not None
    await decode_worker(p.ctx, p.prepare, inbox, outbox)


async def _transcribe(p: Parts, inbox: asyncio.Queue[Any], outbox: asyncio.Queue[Any] | None) -> None:
    assert outbox is not None
    await transcribe_worker(p.ctx, p.transcriber, p.asr_pool, inbox, outbox)


async def _speakers(p: Parts, inbox: asyncio.Queue[Any], outbox: asyncio.Queue[Any] | None) -> None:
    assert outbox is not None
    await speakers_worker(p.ctx, p.tagger, p.speaker_pool, inbox, outbox)


async def _embed(p: Parts, inbox: asyncio.Queue[Any], outbox: asyncio.Queue[Any] | None) -> None:
    assert outbox is not None
    await run_batcher(p.ctx, p.embedder, p.embed_pool, inbox, outbox)


async def _store(p: Parts, inbox: asyncio.Queue[Any], _outbox: asyncio.Queue[Any] | None) -> None:
    await store_worker(
        p.ctx,
        inbox,
        asr_model=p.transcriber.name,
        embed_model=p.embedder.name,
        speaker_model=p.tagger.model if p.tagger is not None else "",
        same_voice=p.ctx.settings.speaker_same_voice,
    )


PIPELINE: tuple[Stage, ...] = (
    Stage(
        name="download",
        label="download",
        queue="io_q",
        queue_size=lambda s: s.io_queue_size,
        workers=lambda s: s.io_workers,
        work=_download,
        worth=_ref_seconds,
        knob="IO_WORKERS",
        one_task=True,
    ),
    Stage(
        name="decode",
        label="decode",
        queue="decode_q",
        queue_size=lambda s: s.decode_queue_size,
        workers=lambda s: 1,  # one file at a time; its windows spread over DECODE_WORKERS processes
        work=_decode,
        worth=_file_seconds,
    ),
    Stage(
        name="asr",
        label="transcribe",
        queue="asr_q",
        queue_size=lambda s: s.asr_queue_size * s.asr_batch_size,  # in speech chunks
        workers=lambda s: s.asr_workers,
        work=_transcribe,
        worth=_decoded_seconds,
        knob="ASR_WORKERS",
        weight=window_weight,
    ),
    Stage(
        name="speakers",
        label="speakers",
        queue="spk_q",
        queue_size=lambda s: s.speaker_queue_size,  # in windows
        workers=lambda s: s.speaker_workers,
        work=_speakers,
        worth=_transcribed_seconds,
        knob="SPEAKER_WORKERS",
    ),
    Stage(
        name="embed",
        label="embed",
        queue="embed_q",
        queue_size=lambda s: s.embed_queue_size,
        workers=lambda s: 1,  # one batcher: rows gather across videos
        work=_embed,
        worth=_labelled_seconds,
        knob="BATCH_SIZE",
    ),
    Stage(
        name="store",
        label="store",
        queue="db_q",
        queue_size=lambda s: s.db_queue_size,
        workers=lambda s: s.db_workers,
        work=_store,
        worth=_embedded_seconds,
        knob="DB_WORKERS",
    ),
)


def metrics_for(stages: Sequence[Stage], settings: Settings) -> Metrics:
    """One ``StageCounters`` per stage, in pipeline order."""
    return Metrics(
        stages={
            st.name: StageCounters(st.name, st.workers(settings), st.queue, st.label, st.knob)
            for st in stages
        }
    )


def split_after(stages: Sequence[Stage], *names: str) -> list[tuple[Stage, ...]]:
    """The stages cut into consecutive slices, each ending at one of ``names`` (or the last stage)."""
    slices: list[tuple[Stage, ...]] = [()]
    for st in stages:
        slices[-1] += (st,)
        if st.name in names and st is not stages[-1]:
            slices.append(())
    return slices


def inbox_for(stage: Stage, settings: Settings, *, size: int | None = None) -> StageQueue[Any]:
    """A new input queue for ``stage``: its configured size unless ``size`` says (0: unbounded)."""
    limit = stage.queue_size(settings) if size is None else size
    return StageQueue(limit, worth=stage.worth, weight=stage.weight)


def wire(
    tg: asyncio.TaskGroup,
    parts: Parts,
    stages: Sequence[Stage],
    inbox: StageQueue[Any],
    outbox: asyncio.Queue[Any] | None = None,
    *,
    finished: asyncio.Event | None = None,
) -> None:
    """Start ``stages`` in ``tg``: ``inbox`` feeds the first, each feeds the next through its own
    bounded queue, the last writes to ``outbox`` (if any). ``finished`` is set once the last
    stage has seen the end marker. Each queue is registered with its stage's counters."""
    ctx, s = parts.ctx, parts.ctx.settings
    queues: list[asyncio.Queue[Any] | None] = [inbox]
    queues += [inbox_for(st, s) for st in stages[1:]]
    queues.append(outbox)
    for i, st in enumerate(stages):
        src, dst = queues[i], queues[i + 1]
        assert src is not None
        ctx.metrics.stages[st.name].inbox = src
        copies = 1 if st.one_task else st.workers(s)
        closing = Closing(copies, dst, finished if i == len(stages) - 1 else None)
        for k in range(copies):
            tg.create_task(_run_copy(st, parts, src, dst, closing), name=f"{st.name}-{k}")


async def _run_copy(
    stage: Stage,
    parts: Parts,
    inbox: asyncio.Queue[Any],
    outbox: asyncio.Queue[Any] | None,
    closing: Closing,
) -> None:
    await stage.work(parts, inbox, outbox)
    await closing.worker_done(inbox)
