"""Bench helpers: peak RSS / audio-on-disk sampling, an embedder that records its batches, the sink replay."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import asyncpg
import numpy as np
import numpy.typing as npt
import psutil
from pgvector.asyncpg import register_vector

from ytingest.config import Settings
from ytingest.db.database import Database
from ytingest.db.search import SEARCH_INDEXES
from ytingest.db.segments import SEGMENT_COLUMNS, segment_records
from ytingest.items import EmbeddedTranscript, Segment, Transcript, VideoRef
from ytingest.models.embedder import SentenceEmbedder
from ytingest.pipeline.context import RunContext
from ytingest.stages.description import PIPELINE, metrics_for
from ytingest.stages.disk import folder_bytes
from ytingest.stages.store import store_worker


class Peaks:
    """Samples the RSS of this process plus its decoder process, and the bytes in ``audio_dir``,
    every 50 ms; keeps the peaks (and the RSS samples)."""

    def __init__(self, audio_dir: Path) -> None:
        self.audio_dir = audio_dir
        self.rss = 0
        self.audio = 0
        self.rss_samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        proc = psutil.Process()
        decoders: list[psutil.Process] = []
        for tick in itertools.count():
            if self._stop.wait(0.05):
                break
            if tick % 20 == 0:  # look for the decoder process once a second
                decoders = _decoders(proc)
            self.rss_samples.append(proc.memory_info().rss + sum(map(_rss, decoders)))
            self.rss = max(self.rss, self.rss_samples[-1])
            self.audio = max(self.audio, folder_bytes(self.audio_dir))

    @property
    def rss_median(self) -> int:
        """Median RSS over the run: what it holds in steady state, without one-off spikes."""
        ordered = sorted(self.rss_samples)
        return ordered[len(ordered) // 2] if ordered else 0

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()


def _decoders(proc: psutil.Process) -> list[psutil.Process]:
    """The engine's decoder process (part of the pipeline's memory; yt-dlp children are not
    counted: they come and go, IO_WORKERS of them)."""
    found = []
    for child in proc.children():
        try:
            if "ytingest.models.decoder" in child.cmdline():
                found.append(child)
        except psutil.Error:
            continue
    return found


def _rss(proc: psutil.Process) -> int:
    try:
        return int(proc.memory_info().rss)
    except psutil.Error:
        return 0


class RecordingEmbedder:
    """The real embedder; remembers each batch of texts it was given."""

    def __init__(self, inner: SentenceEmbedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.batches: list[list[str]] = []

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        out = self.inner.encode(texts, batch_size)
        self.batches.append(list(texts))
        return out

    def raw_rate(self) -> float:
        """Rows/s of plain ``model.encode`` on the same batches, nothing else running."""
        t0 = time.perf_counter()
        for batch in self.batches:
            self.inner.encode(batch)
        return sum(map(len, self.batches)) / (time.perf_counter() - t0)


async def stored_items(dsn: str) -> list[EmbeddedTranscript]:
    """Every stored video back as EmbeddedTranscripts (the rows a sink replay writes again)."""
    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    try:
        rows = await conn.fetch(
            "SELECT video_id, idx, start_s, end_s, text, avg_logprob, embedding"
            " FROM segments ORDER BY video_id, idx"
        )
        videos = {r["id"]: r for r in await conn.fetch("SELECT id, url, audio_seconds FROM videos")}
    finally:
        await conn.close()
    by_video: dict[str, list[asyncpg.Record]] = {}
    for r in rows:
        by_video.setdefault(r["video_id"], []).append(r)
    items = []
    for vid, rs in by_video.items():
        segs = tuple(Segment(r["idx"], r["start_s"], r["end_s"], r["text"], r["avg_logprob"]) for r in rs)
        vecs = np.stack([np.asarray(r["embedding"].to_numpy(), dtype=np.float32) for r in rs])
        ref = VideoRef(vid, videos[vid]["url"])
        items.append(EmbeddedTranscript(Transcript(ref, segs, videos[vid]["audio_seconds"]), vecs))
    return items


class _GroupsSeen(Database):
    """The real database; remembers how many videos each store transaction carried."""

    groups: list[int]

    async def store_transcripts(self, items: Sequence[EmbeddedTranscript], **kw: str) -> None:
        self.groups.append(len(items))
        await super().store_transcripts(items, **kw)


async def sink_replay(
    dsn: str, items: list[EmbeddedTranscript], dim: int, *, indexes: Sequence[str] = ()
) -> dict[str, float]:
    """Seconds to write ``items`` through the store stage with all of them waiting (the sink at
    capacity), and through raw ``copy_records_to_table`` of the same rows in the same groups: into
    a copy of ``segments`` with its indexes and keys, foreign key included (``same``: what the sink
    adds over COPY itself), and into a table without any (``bare``).
    ``indexes``: search indexes (``SEARCH_INDEXES`` names) that exist already, as on a channel's
    second run: every row is also an index insert, for the raw COPY into the same table as well."""
    db = _GroupsSeen(dsn)
    db.groups = []
    await db.connect()
    await db.migrate(dim)
    await db.register_channel("bench://sink")
    for it in items:
        await db.register_video(it.transcript.video)
    ddl = await asyncpg.connect(dsn)
    try:
        for name in indexes:
            await ddl.execute(SEARCH_INDEXES[name])
    finally:
        await ddl.close()
    inbox: asyncio.Queue[EmbeddedTranscript | None] = asyncio.Queue()
    for it in [*items, None]:
        inbox.put_nowait(it)
    settings = Settings()
    ctx = RunContext(settings, db, metrics_for(PIPELINE, settings))
    t0 = time.perf_counter()
    counters = ctx.metrics.stages["store"]
    await store_worker(ctx, inbox, counters=counters, asr_model="bench", embed_model="bench")
    seconds = {"store": time.perf_counter() - t0, "rows": sum(len(it.transcript.segments) for it in items)}
    await db.close()
    groups, at = [], 0
    for n in db.groups:
        groups.append(segment_records(items[at : at + n], "bench"))
        at += n
    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    try:
        for name, like in (("same", "INCLUDING ALL"), ("bare", "INCLUDING DEFAULTS")):
            await conn.execute(f"CREATE TABLE raw_{name} (LIKE segments {like})")
            if name == "same":  # LIKE copies indexes and the key, not the foreign key
                await conn.execute("ALTER TABLE raw_same ADD FOREIGN KEY (video_id) REFERENCES videos (id)")
            t0 = time.perf_counter()
            for records in groups:
                await conn.copy_records_to_table(f"raw_{name}", records=records, columns=SEGMENT_COLUMNS)
            seconds[name] = time.perf_counter() - t0
    finally:
        await conn.close()
    return seconds
