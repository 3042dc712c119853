"""Fakes for tests of the engine's own logic (ordering, backpressure, shutdown) — never of features."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ytingest.errors import DownloadError, StoreError, TranscribeError
from ytingest.items import WAITING, AudioFile, EmbeddedTranscript, Segment, VideoRef
from ytingest.models.asr import AsrResult


@dataclass
class FakeDiscoverer:
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
            path.write_bytes(b"x")
            on_disk = len(await asyncio.to_thread(lambda: list(dest.iterdir())))
            self.max_files_on_disk = max(self.max_files_on_disk, on_disk)
            self.finished.append(ref.id)
            return AudioFile(ref, path, 1)
        finally:
            self.active -= 1


@dataclass
class FakeTranscriber:
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
    dim: int = 4
    name: str = "fake-embed"
    batches: list[int] = field(default_factory=list)
    forward_sizes: list[int | None] = field(default_factory=list)

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        self.batches.append(len(texts))
        self.forward_sizes.append(batch_size)
        return np.ones((len(texts), self.dim), dtype=np.float32)


@dataclass
class FakeDatabase:
    """In-memory ledger with the Database methods the engine calls."""

    done: set[str] = field(default_factory=set)
    store_delay: float = 0.0
    fail_store: bool = False
    statuses: dict[str, str] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)
    store_calls: list[str] = field(default_factory=list)
    store_groups: list[int] = field(default_factory=list)
    index_builds: int = 0
    fail_index: bool = False
    reasons: dict[str, str] = field(default_factory=dict)
    where: str = "memory"
    three_stored: asyncio.Event = field(default_factory=asyncio.Event)
    attempts: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, dict[str, str | None]] = field(default_factory=dict)

    async def connect(self) -> None: ...
    async def close(self) -> None: ...
    async def embedding_dim(self) -> int:
        return 4

    async def migrate(self, dim: int) -> None: ...
    async def check_dim(self, dim: int) -> None: ...
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

    async def store_transcripts(self, items: Sequence[EmbeddedTranscript], **_: Any) -> None:
        if self.fail_store:
            raise StoreError("store video failed at memory: connection reset")
        self.store_groups.append(len(items))
        for item in items:
            await asyncio.sleep(self.store_delay)
            vid = item.transcript.video.id
            assert len(item.vectors) == len(item.transcript.segments)
            self.store_calls.append(vid)
            self.stored[vid] = len(item.transcript.segments)
            self.statuses[vid] = "done"
        if len(self.store_calls) >= 3:
            self.three_stored.set()

    async def ensure_search_index(self) -> bool:
        self.index_builds += 1
        if self.fail_index:
            raise StoreError(
                "build the search indexes failed at memory: connection was closed", transient=True
            )
        return True


def refs(n: int, **kw: Any) -> list[VideoRef]:
    return [VideoRef(f"v{i:03d}", f"http://x/v{i:03d}", title=f"video {i}", **kw) for i in range(n)]
