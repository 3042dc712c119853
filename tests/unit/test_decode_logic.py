"""The decode stage's own logic, with a fake decoder: where a video resumes, a wholly checkpointed
video is not decoded, and a download that fails while its file is decoded drops the video's
windows without failing it a second time; the download stage's hand-off finds yt-dlp's .part."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from ytingest.config import Settings
from ytingest.items import AudioFile, DecodedAudio, PreparedAudio, ResumePoint, VideoRef
from ytingest.models.growing import DownloadEnded, end_marker, mark_end
from ytingest.pipeline.context import RunContext
from ytingest.stages.decode import decode_worker
from ytingest.stages.description import PIPELINE, metrics_for
from ytingest.stages.handoff import find_part
from ytingest.testing.fakes import MemoryStore


def make_ctx(tmp_path: Path, points: dict[str, ResumePoint]) -> RunContext:
    settings = Settings(ytingest_home=tmp_path)
    ctx = RunContext(settings, MemoryStore(), metrics_for(PIPELINE, settings))  # type: ignore[arg-type]

    async def resume_at(video_id: str) -> ResumePoint | None:
        return points.get(video_id)

    ctx.resume_at = resume_at
    return ctx


class FakeDecoder:
    """Three 10 s windows from ``start``; ``fail_after``: DownloadEnded after that many."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls: list[tuple[Path, dict[str, Any]]] = []
        self.fail_after = fail_after

    async def __call__(self, path: Path, **options: Any) -> AsyncIterator[PreparedAudio]:
        self.calls.append((path, options))
        start: ResumePoint | None = options.get("start")
        index, offset = (start.index, start.offset) if start else (0, 0.0)
        for n in range(3):
            if self.fail_after is not None and n == self.fail_after:
                raise DownloadEnded("the download failed while decoding: HTTP Error 500")
            audio = np.zeros(160_000, np.float32)
            yield PreparedAudio(audio, offset=offset + 10 * n, index=index + n, last=n == 2, total=60.0)


async def run(ctx: RunContext, decoder: FakeDecoder, files: list[AudioFile]) -> list[DecodedAudio]:
    inbox: asyncio.Queue[AudioFile | None] = asyncio.Queue()
    outbox: asyncio.Queue[DecodedAudio | None] = asyncio.Queue()
    for item in (*files, None):
        inbox.put_nowait(item)
    await decode_worker(ctx, decoder, inbox, outbox, counters=ctx.metrics.stages["decode"])
    return [outbox.get_nowait() for _ in range(outbox.qsize())]  # type: ignore[misc]


async def test_a_video_resumes_at_its_point_and_a_complete_one_is_skipped(tmp_path: Path) -> None:
    """resume_at's point goes to the decoder (windows numbered from it); complete: nothing decoded,
    nothing handed on; no point: the decoder is called as before, with the path alone."""
    points = {"half": ResumePoint(4, 1200.0), "done": ResumePoint(9, 3300.0, complete=True)}
    ctx, decoder = make_ctx(tmp_path, points), FakeDecoder()
    files = [AudioFile(VideoRef(v, "u"), tmp_path / f"{v}.m4a", 1) for v in ("half", "done", "fresh")]
    out = await run(ctx, decoder, files)
    assert [(p.name, o) for p, o in decoder.calls] == [
        ("half.m4a", {"start": points["half"]}),
        ("fresh.m4a", {}),
    ]
    got = [(d.file.video.id, d.prepared.index, d.prepared.offset) for d in out if d.prepared is not None]
    assert got == [("half", 4, 1200.0), ("half", 5, 1210.0), ("half", 6, 1220.0)] + [
        ("fresh", 0, 0.0),
        ("fresh", 1, 10.0),
        ("fresh", 2, 20.0),
    ]


async def test_a_download_failing_under_the_decoder_drops_the_video_once(tmp_path: Path) -> None:
    """The growing file's download fails for good after a window: the decoder is given the .part,
    the video's windows are dropped (later ones ignored), the failure is the download stage's
    (not recorded here: it wrote the marker), and the marker is cleaned up."""
    ctx, decoder = make_ctx(tmp_path, {}), FakeDecoder(fail_after=1)
    part = tmp_path / "v.webm.part"
    part.write_bytes(b"\x1a\x45\xdf\xa3")
    mark_end(part, "HTTP Error 500")
    growing = AudioFile(VideoRef("v", "u"), tmp_path / "v.webm", 0, growing=part)
    out = await run(ctx, decoder, [growing])
    assert decoder.calls == [(tmp_path / "v.webm", {"growing": part})]
    assert [d.prepared.index for d in out if d.prepared is not None] == [0]
    assert ctx.windows.failed("v") and not ctx.failures
    assert not end_marker(part).exists()


async def test_a_download_gone_silent_is_failed_by_the_decoder(tmp_path: Path) -> None:
    """No marker at all (the download stage never said how it ended): the decode stage fails it,
    in its own name (the decoder is what waited for it in vain)."""
    ctx, decoder = make_ctx(tmp_path, {}), FakeDecoder(fail_after=0)
    part = tmp_path / "v.webm.part"
    part.write_bytes(b"\x1a\x45\xdf\xa3")
    await run(ctx, decoder, [AudioFile(VideoRef("v", "u"), tmp_path / "v.webm", 0, growing=part)])
    assert [(f.video_id, f.stage) for f in ctx.failures] == [("v", "decode")]


def test_the_hand_off_finds_only_this_videos_part(tmp_path: Path) -> None:
    """yt-dlp's <id>.<ext>.part, by name: not another id's, not a fragment, not the end marker."""
    for name in ("ab.m4a.part", "abc.webm.part-Frag1", "abc.webm.part.end", "abcd.webm.part", "abc.webm"):
        (tmp_path / name).write_bytes(b"x")
    assert find_part(tmp_path, "abc") is None
    (tmp_path / "abc.webm.part").write_bytes(b"x")
    assert find_part(tmp_path, "abc") == tmp_path / "abc.webm.part"
