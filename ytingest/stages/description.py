"""The pipeline, described once: the stages in order, each with its input queue, workers and work.

The streaming engine and bulk mode wire their queues and tasks from ``PIPELINE`` (``wire``, which
hands each worker its stage's counters), and the monitor (metrics, diagnosis, dashboard, report,
``/metrics``, the run page) sees each stage through the counters ``Metrics`` builds from it: its
label, queue, knob, colours, advice and whether it runs the model. Bulk mode cuts the stages by the
phase each declares. A new stage is one entry here plus its module; no other file names it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import IntEnum
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
from ytingest.pipeline.advice import (
    Advice,
    advise_batches,
    advise_database,
    advise_decoder,
    advise_model,
    advise_speaker_id,
)
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.counters import Metrics, StageCounters
from ytingest.pipeline.queues import Closing, StageQueue
from ytingest.ports import Downloader, Embedder, Source, SpeakerTagger, Transcriber
from ytingest.stages.decode import Prepare, decode_worker
from ytingest.stages.download import DownloadPolicy, run_downloads
from ytingest.stages.embed import run_batcher
from ytingest.stages.speakers import speakers_worker
from ytingest.stages.store import store_worker
from ytingest.stages.transcribe import transcribe_worker, window_weight


@dataclass(frozen=True, slots=True)
class Parts:
    """What a run's stages are made of (the engine builds it once per run)."""

    ctx: RunContext
    discoverer: Source
    downloader: Downloader
    transcriber: Transcriber
    tagger: SpeakerTagger | None
    embedder: Embedder
    policy: DownloadPolicy
    asr_pool: Executor
    prepare: Prepare | None
    embed_pool: Executor
    speaker_pool: Executor


Work = Callable[[Parts, StageCounters, asyncio.Queue[Any], asyncio.Queue[Any] | None], Awaitable[None]]


class Phase(IntEnum):
    """Bulk mode's phases (``stages/bulk.py``), run one after the other over a wave of videos."""

    FETCH = 1  # download everything that fits the disk budget
    TRANSCRIBE = 2  # then the model (and what feeds it or reads its windows) over all of it
    STORE = 3  # then embed and store it


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage: ``work(parts, counters, inbox, outbox)`` takes items until the end marker and
    returns, counting its work (and naming its failures) with the ``counters`` it is handed.

    ``workers`` copies of ``work`` share the inbox; ``one_task`` stages run one copy that keeps
    ``workers`` items in flight itself (downloads, under a resizable limit). The end marker is
    passed on by ``wire``, never by ``work``.
    """

    name: str  # metrics, diagnosis, failures and the ``stage`` label of /metrics
    label: str  # the dashboard's word for it
    queue: str  # its input queue, as the one-line summary names it
    queue_size: Callable[[Settings], int]
    workers: Callable[[Settings], int]
    work: Work
    worth: Callable[[Any], float]  # audio-seconds one input item is worth
    phase: Phase  # the bulk phase it runs in (stages of one phase are consecutive)
    knob: str | None = None  # the setting that gives the stage more capacity (autotune turns some)
    advice: Advice | None = None  # its bottleneck advice (``pipeline/advice.py``; None: raise ``knob``)
    colour: str = ""  # the run page's and the report's colour for it (CSS)
    term_colour: str = ""  # the terminal dashboard's (a Rich colour)
    model: bool = False  # it runs the model: its videos are ``in_model``, its stall a ``stalled``
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


Inbox = asyncio.Queue[Any]
Outbox = asyncio.Queue[Any] | None


async def _download(p: Parts, counters: StageCounters, inbox: Inbox, outbox: Outbox) -> None:
    assert outbox is not None
    await run_downloads(p.ctx, p.downloader, inbox, outbox, p.policy, counters)


async def _decode(p: Parts, counters: StageCounters, inbox: Inbox, outbox: Outbox) -> None:
    assert outbox is not None
    await decode_worker(p.ctx, p.prepare, inbox, outbox, counters=counters)


async def _transcribe(p: Parts, counters: StageCounters, inbox: Inbox, outbox: Outbox) -> None:
    assert outbox is not None
    await transcribe_worker(p.ctx, p.transcriber, p.asr_pool, inbox, outbox, counters=counters)


async def _speakers(p: Parts, counters: StageCounters, inbox: Inbox, outbox: Outbox) -> None:
    assert outbox is not None
    await speakers_worker(p.ctx, p.tagger, p.speaker_pool, inbox, outbox, counters=counters)


async def _embed(p: Parts, counters: StageCounters, inbox: Inbox, outbox: Outbox) -> None:
    assert outbox is not None
    await run_batcher(p.ctx, p.embedder, p.embed_pool, inbox, outbox, counters=counters)


async def _store(p: Parts, counters: StageCounters, inbox: Inbox, _outbox: Outbox) -> None:
    await store_worker(
        p.ctx,
        inbox,
        counters=counters,
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
        phase=Phase.FETCH,
        knob="IO_WORKERS",
        colour="#d4a017",
        term_colour="yellow",
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
        phase=Phase.TRANSCRIBE,
        advice=advise_decoder,
        colour="#c061cb",
        term_colour="bright_magenta",
    ),
    Stage(
        name="asr",
        label="transcribe",
        queue="asr_q",
        queue_size=lambda s: s.asr_queue_size * s.asr_batch_size,  # in speech chunks
        workers=lambda s: s.asr_workers,
        work=_transcribe,
        worth=_decoded_seconds,
        phase=Phase.TRANSCRIBE,
        knob="ASR_WORKERS",
        advice=advise_model,
        colour="#a347ba",
        term_colour="magenta",
        model=True,
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
        phase=Phase.TRANSCRIBE,
        knob="SPEAKER_WORKERS",
        advice=advise_speaker_id,
        colour="#75507b",
        term_colour="bright_cyan",
    ),
    Stage(
        name="embed",
        label="embed",
        queue="embed_q",
        queue_size=lambda s: s.embed_queue_size,
        workers=lambda s: 1,  # one batcher: rows gather across videos
        work=_embed,
        worth=_labelled_seconds,
        phase=Phase.STORE,
        knob="BATCH_SIZE",
        advice=advise_batches,
        colour="#1f9bb4",
        term_colour="cyan",
    ),
    Stage(
        name="store",
        label="store",
        queue="db_q",
        queue_size=lambda s: s.db_queue_size,
        workers=lambda s: s.db_workers,
        work=_store,
        worth=_embedded_seconds,
        phase=Phase.STORE,
        knob="DB_WORKERS",
        advice=advise_database,
        colour="#3465a4",
        term_colour="blue",
    ),
)


def metrics_for(stages: Sequence[Stage], settings: Settings) -> Metrics:
    """One ``StageCounters`` per stage, in pipeline order, with what the monitor shows of it."""
    return Metrics(
        stages={
            st.name: StageCounters(
                st.name,
                st.workers(settings),
                st.queue,
                st.label,
                st.knob,
                model=st.model,
                colour=st.colour,
                term_colour=st.term_colour,
                advice=st.advice,
            )
            for st in stages
        }
    )


def phases(stages: Sequence[Stage]) -> list[tuple[Stage, ...]]:
    """The stages cut into bulk mode's phases, one slice per ``Phase``, in order (each stage in
    the phase it declares; the pipeline order must not go back to an earlier phase)."""
    order = [st.phase for st in stages]
    if order != sorted(order):
        raise ValueError(f"bulk phases out of order: {[(st.name, st.phase.name) for st in stages]}")
    return [tuple(st for st in stages if st.phase == phase) for phase in Phase]


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
    stage has seen the end marker. Each queue is registered with its stage's counters, which
    each worker of the stage is handed."""
    ctx, s = parts.ctx, parts.ctx.settings
    queues: list[asyncio.Queue[Any] | None] = [inbox]
    queues += [inbox_for(st, s) for st in stages[1:]]
    queues.append(outbox)
    for i, st in enumerate(stages):
        src, dst = queues[i], queues[i + 1]
        assert src is not None
        counters = ctx.metrics.stages[st.name]
        counters.inbox = src
        copies = 1 if st.one_task else st.workers(s)
        closing = Closing(copies, dst, finished if i == len(stages) - 1 else None)
        for k in range(copies):
            task = _run_copy(st, parts, counters, src, dst, closing)
            tg.create_task(task, name=f"{st.name}-{k}")


async def _run_copy(
    stage: Stage,
    parts: Parts,
    counters: StageCounters,
    inbox: Inbox,
    outbox: Outbox,
    closing: Closing,
) -> None:
    await stage.work(parts, counters, inbox, outbox)
    await closing.worker_done(inbox)
