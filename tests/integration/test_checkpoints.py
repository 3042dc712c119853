"""Checkpoint windows on real PostgreSQL: a video's finished windows are kept, a later run resumes
after the last unbroken one (same models only), and a video whose every window is kept is stored
from them without the model. The embed stage writes them; the store deletes them."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from ytingest.config import Settings
from ytingest.db.database import Database
from ytingest.items import (
    AnonymousVoice,
    AudioFile,
    Checkpoint,
    EmbeddedTranscript,
    LabelledWindow,
    ResumePoint,
    Segment,
    VideoRef,
    WindowResult,
    Word,
)
from ytingest.pipeline.context import RunContext
from ytingest.stages.description import PIPELINE, metrics_for
from ytingest.stages.embed import run_batcher
from ytingest.stages.resume import Resumer, use_checkpoints
from ytingest.stages.store import store_group

DIM = 8
MODELS: dict[str, Any] = {"asr_model": "tiny.en", "embed_model": "hash-embed", "speaker_model": ""}
REF = VideoRef("vid1", "http://x/vid1", title="Vid one", duration=300.0, webpage_url="http://x/vid1")


class HashEmbedder:
    """Distinct, repeatable unit vectors per text (the claim here is about keeping rows, not meaning)."""

    name, dim = "hash-embed", DIM

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:DIM], np.uint8) for t in texts]
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), DIM) + 1.0
        return np.asarray(out / np.linalg.norm(out, axis=1, keepdims=True), dtype=np.float32)


def window(index: int, *, last: bool = False, seconds: float = 100.0, n: int = 3) -> WindowResult:
    """Window ``index`` of 100 s with ``n`` segments on the video's timeline, words and a voice."""
    base = index * 100.0
    segs = tuple(
        Segment(
            i,
            base + 10 * i,
            base + 10 * i + 4.25,
            f" window {index} line {i}" + (" with a \x00 NUL" if i == 1 else ""),
            -0.25,
            f"?{index}.0",
            np.float32(0.5),  # as a speaker tagger may leave it: a numpy scalar
            i == 2,
            (Word(base + 10 * i, base + 10 * i + 1.5, " window"),),
        )
        for i in range(n)
    )
    voice = AnonymousVoice(f"?{index}.0", np.linspace(-1, 1, 16, dtype=np.float32), 12.5)
    return WindowResult(index, last, segs, seconds, "en", 0.97 if index == 0 else None, None, (voice,))


def kept(index: int, **kw: object) -> Checkpoint:
    w = window(index, **kw)  # type: ignore[arg-type]
    return Checkpoint(w, HashEmbedder().encode([s.text for s in w.segments]))


@pytest.fixture
async def db(fresh_dsn: str) -> AsyncIterator[Database]:
    database = Database(fresh_dsn)
    await database.connect()
    await database.migrate(DIM)
    await database.register_video(REF)
    try:
        yield database
    finally:
        await database.close()


def run_context(tmp_path: Path, db: Database, **knobs: object) -> RunContext:
    settings = Settings(ytingest_home=tmp_path, speakers=False, **knobs)  # type: ignore[arg-type]
    settings.audio_dir.mkdir(parents=True, exist_ok=True)
    return RunContext(settings, db, metrics_for(PIPELINE, settings))


def audio(ctx: RunContext) -> AudioFile:
    path = ctx.settings.audio_dir / f"{REF.id}.m4a"
    path.write_bytes(b"audio")
    return AudioFile(REF, path, 5)


async def test_kept_windows_come_back_exactly_and_the_video_resumes_after_them(
    tmp_path: Path, db: Database
) -> None:
    """Windows 0-1 kept: resume at window 2, 200 s in; with window 2 the video equals an uninterrupted one."""
    await db.save_checkpoints([(REF.id, kept(0)), (REF.id, kept(1))], **MODELS)
    ctx = run_context(tmp_path, db)
    resumer = Resumer(ctx, db, **MODELS)
    assert await resumer.resume_at(REF.id) == ResumePoint(2, 200.0, False)
    file = audio(ctx)
    last = kept(2, last=True)
    assert ctx.windows.language(REF.id) == ("en", 0.97)  # later windows are transcribed in it
    assert ctx.windows.transcribed(file, 2, True)  # every window through the model: file not needed
    resumed = ctx.windows.add_embedded(file, last.result, last.vectors)

    whole_run = RunContext(ctx.settings, db, metrics_for(PIPELINE, ctx.settings))
    straight = None
    for c in (kept(0), kept(1), last):
        straight = whole_run.windows.add_embedded(file, c.result, c.vectors) or straight
    assert resumed is not None and straight is not None
    assert replace(resumed.transcript, voices=()) == replace(straight.transcript, voices=())
    assert [(v.key, v.weight) for v in resumed.transcript.voices] == [
        ("?0.0", 12.5),
        ("?1.0", 12.5),
        ("?2.0", 12.5),
    ]
    for a, b in zip(resumed.transcript.voices, straight.transcript.voices, strict=True):
        assert np.array_equal(a.vector, b.vector) and a.vector.dtype == np.float32
    assert np.array_equal(resumed.vectors, straight.vectors)
    texts = [s.text for s in resumed.transcript.segments]
    assert texts[1] == " window 0 line 1 with a \x00 NUL" and len(texts) == 9
    assert resumed.transcript.segments[0].words == (Word(0.0, 1.5, " window"),)


async def test_only_the_same_models_and_an_unbroken_run_from_window_0_are_used(
    tmp_path: Path, db: Database
) -> None:
    """Another ASR or embed model's windows are ignored; a gap ends the run and the rows past it go."""
    await db.save_checkpoints([(REF.id, kept(0)), (REF.id, kept(1))], **{**MODELS, "asr_model": "base"})
    ctx = run_context(tmp_path, db)
    assert await Resumer(ctx, db, **MODELS).resume_at(REF.id) is None
    await db.save_checkpoints([(REF.id, kept(0))], **{**MODELS, "embed_model": "other"})
    assert await Resumer(ctx, db, **MODELS).resume_at(REF.id) is None
    await db.save_checkpoints([(REF.id, kept(0)), (REF.id, kept(2)), (REF.id, kept(3))], **MODELS)
    point = await Resumer(run_context(tmp_path, db), db, **MODELS).resume_at(REF.id)
    assert point == ResumePoint(1, 100.0, False)
    rows = await db.checkpointed(REF.id)
    assert [(r["asr_model"], r["window_index"]) for r in rows] == [("base", 0), ("base", 1), ("tiny.en", 0)]


async def test_every_window_kept_stores_the_video_without_the_model(tmp_path: Path, db: Database) -> None:
    """All windows kept (a kill before the store): complete, stored whole, file and rows gone."""
    await db.save_checkpoints([(REF.id, kept(0)), (REF.id, kept(1)), (REF.id, kept(2, last=True))], **MODELS)
    ctx = run_context(tmp_path, db)
    file = audio(ctx)
    (ctx.settings.audio_dir / f"{REF.id}.m4a.part").write_bytes(b"another download in flight")
    use_checkpoints(ctx, db, lambda path: None, **MODELS)  # type: ignore[arg-type]
    future = ctx.expect(REF.id)
    assert await ctx.resume_at(REF.id) == ResumePoint(3, 300.0, True)
    assert future.result() == "stored"
    summary = ctx.summary()
    assert summary.done == 1 and summary.audio_seconds == 300.0 and summary.audio_seconds_transcribed == 0.0
    stored = await db.video_segments(REF.id)
    assert stored is not None
    video, rows = stored
    assert video["status"] == "done" and [r["idx"] for r in rows] == list(range(9))
    assert [r["text"] for r in rows][3] == " window 1 line 0"
    assert not file.path.exists() and (file.path.parent / f"{REF.id}.m4a.part").exists()
    assert await db.checkpointed(REF.id) == []
    assert ctx.windows.in_flight == 0


async def test_windows_kept_before_the_video_was_stored_are_never_used(tmp_path: Path, db: Database) -> None:
    """Rows left behind by a stored video (older than its done_at) do not resume a later run."""
    await db.save_checkpoints([(REF.id, kept(0)), (REF.id, kept(1))], **MODELS)
    ctx = run_context(tmp_path, db)
    await asyncio.sleep(0.01)
    whole = None
    for c in (kept(0), kept(1, last=True)):
        whole = ctx.windows.add_embedded(audio(ctx), c.result, c.vectors) or whole
    assert whole is not None
    await store_group(ctx, [whole], **MODELS)  # no checkpoints object: nothing deleted
    assert len(await db.checkpointed(REF.id)) == 2
    assert await Resumer(run_context(tmp_path, db), db, **MODELS).resume_at(REF.id) is None


async def test_the_embed_stage_keeps_windows_of_long_videos_and_the_store_forgets_them(
    tmp_path: Path, db: Database
) -> None:
    """Windows of a 3-window video are kept as they are embedded; a one-window video's are not;
    once stored, the video's rows are deleted."""
    short = VideoRef("short1", "http://x/short1")
    await db.register_video(short)
    ctx = run_context(tmp_path, db)
    use_checkpoints(ctx, db, lambda path: None, **MODELS)  # type: ignore[arg-type]
    file = audio(ctx)
    short_file = AudioFile(short, tmp_path / "short1.m4a", 1)
    inbox: asyncio.Queue[LabelledWindow | None] = asyncio.Queue()
    outbox: asyncio.Queue[EmbeddedTranscript | None] = asyncio.Queue()
    for w in (window(0), window(1)):
        inbox.put_nowait(LabelledWindow(file, w))
    inbox.put_nowait(LabelledWindow(short_file, replace(window(0), last=True)))
    inbox.put_nowait(None)
    await run_batcher(ctx, HashEmbedder(), None, inbox, outbox, counters=ctx.metrics.stages["embed"])  # type: ignore[arg-type]
    first = outbox.get_nowait()
    assert first is not None and first.transcript.video == short and outbox.empty()
    assert [r["window_index"] for r in await db.checkpointed(REF.id)] == [0, 1]
    assert await db.checkpointed(short.id) == []
    again = run_context(tmp_path, db)
    assert await Resumer(again, db, **MODELS).resume_at(REF.id) == ResumePoint(2, 200.0, False)

    inbox.put_nowait(LabelledWindow(file, window(2, last=True)))
    inbox.put_nowait(None)
    await run_batcher(ctx, HashEmbedder(), None, inbox, outbox, counters=ctx.metrics.stages["embed"])  # type: ignore[arg-type]
    whole = outbox.get_nowait()
    assert whole is not None and len(whole.transcript.segments) == 9
    assert [r["window_index"] for r in await db.checkpointed(REF.id)] == [0, 1, 2]
    await store_group(ctx, [whole], **MODELS)
    assert await db.checkpointed(REF.id) == []
