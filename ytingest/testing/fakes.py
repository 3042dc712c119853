"""In-memory implementations of the ports, for tests of logic around the engine: yours, when you
embed ``Engine`` in an app, and ours (ordering, backpressure, shutdown). They prove nothing about
the real parts: every feature is tested on yt-dlp, faster-whisper and PostgreSQL.

``Engine(settings, discoverer=FakeSource(refs(10)), downloader=FakeDownloader(),
transcriber=FakeTranscriber(), embedder=FakeEmbedder(), database=MemoryStore())`` runs the
whole pipeline in memory, in milliseconds (set ``speakers=False``: there is no speaker model).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ytingest.errors import DownloadError, StoreError, TranscribeError
from ytingest.items import WAITING, AudioFile, EmbeddedTranscript, SearchHit, Segment, VideoRef
from ytingest.ports import AsrResult
from ytingest.search import SearchQuery, terms

__all__ = ["FakeDownloader", "FakeEmbedder", "FakeSource", "FakeTranscriber", "MemoryStore", "refs"]


def refs(n: int, **kw: Any) -> list[VideoRef]:
    """``n`` videos ``v000``, ``v001``, … (``kw``: more ``VideoRef`` fields for each)."""
    return [VideoRef(f"v{i:03d}", f"http://x/v{i:03d}", title=f"video {i}", **kw) for i in range(n)]


@dataclass
class FakeSource:
    """A ``Source`` that lists ``refs``, ``delay`` seconds apart."""

    refs: list[VideoRef]
    delay: float = 0.0
    listed: int = 0

    async def discover(self, url: str) -> AsyncGenerator[VideoRef, None]:
        for ref in self.refs:
            await asyncio.sleep(self.delay)
            self.listed += 1
            yield ref


@dataclass
class FakeDownloader:
    """A ``Downloader`` that writes one byte per video after ``delay``; ``fail``: ids answered 404.
    It counts the downloads running at once and the files on disk at once."""

    delay: float = 0.01
    fail: set[str] = field(default_factory=set)
    active: int = 0
    max_active: int = 0
    max_files_on_disk: int = 0
    finished: list[str] = field(default_factory=list)

    async def download(self, ref: VideoRef, dest: Path) -> AudioFile:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(self.delay)
            if ref.id in self.fail:
                raise DownloadError("HTTP Error 404: Not Found")
            path = dest / f"{ref.id}.bin"
            await asyncio.to_thread(path.write_bytes, b"x")
            on_disk = len(await asyncio.to_thread(lambda: list(dest.iterdir())))
            self.max_files_on_disk = max(self.max_files_on_disk, on_disk)
            self.finished.append(ref.id)
            return AudioFile(ref, path, 1)
        finally:
            self.active -= 1


@dataclass
class FakeTranscriber:
    """A ``Transcriber``: ``segments`` segments "<video id> segment <i>", one second each, after
    ``delay`` seconds of (blocking) work; ``fail``: ids whose audio "cannot be decoded"."""

    delay: float = 0.0
    segments: int = 3
    fail: set[str] = field(default_factory=set)
    name: str = "fake-asr"
    order: list[str] = field(default_factory=list)

    def transcribe(self, path: Path) -> AsrResult:
        time.sleep(self.delay)
        vid = path.stem
        self.order.append(vid)
        if vid in self.fail:
            raise TranscribeError("cannot decode audio: InvalidDataError")
        segs = tuple(Segment(i, float(i), i + 1.0, f"{vid} segment {i}") for i in range(self.segments))
        return AsrResult(segs, float(self.segments), "en", np.zeros(16, dtype=np.float32))


@dataclass
class FakeEmbedder:
    """An ``Embedder`` of ``dim``-d vectors of ones; it records each call's size and batch size."""

    dim: int = 4
    name: str = "fake-embed"
    batches: list[int] = field(default_factory=list)
    forward_sizes: list[int | None] = field(default_factory=list)

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        self.batches.append(len(texts))
        self.forward_sizes.append(batch_size)
        return np.ones((len(texts), self.dim), dtype=np.float32)


@dataclass
class MemoryStore:
    """The storage ports in memory (``RunStore``, ``SearchIndex``) and the lifecycle the engine
    calls. Knobs: ``done`` (ids stored before), ``store_delay`` (seconds per video),
    ``fail_store`` / ``fail_index`` (the database goes away there)."""

    done: set[str] = field(default_factory=set)
    store_delay: float = 0.0
    fail_store: bool = False
    fail_index: bool = False
    dim: int = 4
    where: str = "memory"
    statuses: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, dict[str, str | None]] = field(default_factory=dict)
    rows: dict[str, EmbeddedTranscript] = field(default_factory=dict)  # each stored video, as stored
    stored: dict[str, int] = field(default_factory=dict)  # video id -> its segment count
    store_calls: list[str] = field(default_factory=list)  # video ids, in the order stored
    store_groups: list[int] = field(default_factory=list)  # videos per store transaction
    index_builds: int = 0
    three_stored: asyncio.Event = field(default_factory=asyncio.Event)

    # ---- lifecycle ----------------------------------------------------------------------------
    async def connect(self) -> None: ...
    async def close(self) -> None: ...
    async def migrate(self, dim: int) -> None: ...
    async def check_dim(self, dim: int) -> None: ...

    async def embedding_dim(self) -> int:
        return self.dim

    # ---- Ledger ------------------------------------------------------------------------------
    async def register_channel(self, url: str) -> None: ...

    async def skip_reason(self, video_id: str) -> str | None:
        return "already stored" if video_id in self.done else None

    async def count_attempt(self, video_id: str) -> None:
        self.attempts[video_id] = self.attempts.get(video_id, 1) + 1

    async def register_video(self, ref: VideoRef) -> None:
        if self.statuses.get(ref.id) != "done":
            self.statuses[ref.id] = WAITING.get(ref.live_status or "", "pending")

    async def record_metadata(
        self, video_id: str, *, upload_date: str | None, channel_name: str, channel_id: str
    ) -> None:
        self.metadata[video_id] = {
            "upload_date": upload_date,
            "channel_name": channel_name,
            "channel_id": channel_id,
        }

    async def mark_failed(self, video_id: str, stage: str, reason: str, *, permanent: bool = False) -> None:
        self.statuses[video_id] = "failed"
        self.reasons[video_id] = f"{stage}: {reason}"

    # ---- SegmentSink -------------------------------------------------------------------------
    async def store_transcripts(self, items: Sequence[EmbeddedTranscript], **_: Any) -> None:
        if self.fail_store:
            raise StoreError("store video failed at memory: connection reset")
        self.store_groups.append(len(items))
        for item in items:
            await asyncio.sleep(self.store_delay)
            vid = item.transcript.video.id
            if len(item.vectors) != len(item.transcript.segments):
                raise StoreError(
                    f"{vid}: {len(item.vectors)} vectors for {len(item.transcript.segments)} rows"
                )
            self.store_calls.append(vid)
            self.rows[vid] = item
            self.stored[vid] = len(item.transcript.segments)
            self.statuses[vid] = "done"
        if len(self.store_calls) >= 3:
            self.three_stored.set()

    # ---- SearchIndex -------------------------------------------------------------------------
    async def ensure_search_index(self) -> bool:
        self.index_builds += 1
        if self.fail_index:
            raise StoreError(
                "build the search indexes failed at memory: connection was closed", transient=True
            )
        return True

    async def search(
        self, query: SearchQuery, vector: npt.NDArray[np.float32] | None = None
    ) -> list[SearchHit]:
        """Segments holding every word of the query (case aside), most mentions first; the
        ``video`` and ``speaker`` filters apply, ranking modes and the vector do not."""
        wanted = [t.lower() for t in terms(query.text)]
        hits: list[SearchHit] = []
        for vid, item in self.rows.items():
            if query.video is not None and vid != query.video:
                continue
            for seg in item.transcript.segments:
                text = seg.text.lower()
                if query.speaker not in (None, seg.speaker) or not all(w in text for w in wanted):
                    continue
                score = float(sum(text.count(w) for w in wanted))
                video = item.transcript.video
                hits.append(
                    SearchHit(
                        vid, video.title, video.url, seg.start, seg.end, seg.text, seg.speaker, score, seg.idx
                    )
                )
        return sorted(hits, key=lambda h: -h.score)[: query.limit]


if TYPE_CHECKING:  # mypy checks here that each fake implements its port
    from ytingest.ports import Downloader, Embedder, RunStore, SearchIndex, Source, Transcriber

    _PORTS: tuple[
        type[Source], type[Downloader], type[Transcriber], type[Embedder], type[RunStore], type[SearchIndex]
    ]
    _PORTS = (FakeSource, FakeDownloader, FakeTranscriber, FakeEmbedder, MemoryStore, MemoryStore)
