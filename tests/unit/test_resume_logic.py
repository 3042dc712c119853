"""The engine's own logic around checkpoints, without a database: when resuming is on, how the
window assembly takes restored windows, and what a run reports as transcribed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ytingest.config import Settings
from ytingest.db.database import Database
from ytingest.items import AudioFile, Checkpoint, Segment, VideoRef, WindowResult
from ytingest.pipeline.assembly import WindowAssembly
from ytingest.pipeline.context import RunContext, _from_the_start
from ytingest.stages.description import PIPELINE, metrics_for
from ytingest.stages.resume import use_checkpoints
from ytingest.testing.fakes import MemoryStore

REF = VideoRef("v1", "http://x/v1")


def kept(index: int, *, last: bool = False) -> Checkpoint:
    segs = (Segment(0, index * 60.0 + 1, index * 60.0 + 2, f" w{index}"),)
    return Checkpoint(WindowResult(index, last, segs, 60.0, "de", 0.9), np.full((1, 4), index, np.float32))


def context(tmp_path: Path, db: Any) -> RunContext:
    settings = Settings(ytingest_home=tmp_path)
    return RunContext(settings, db, metrics_for(PIPELINE, settings))


def test_resuming_is_on_only_with_windowed_decoding_and_a_real_database(tmp_path: Path) -> None:
    """A fake ledger, or a transcriber that decodes whole files, keeps the defaults (from the start)."""
    fake = context(tmp_path, MemoryStore())
    use_checkpoints(fake, fake.ledger, lambda p: None, "asr", "emb", "")  # type: ignore[arg-type]
    assert fake.checkpoints is None and fake.resume_at is _from_the_start
    db = Database("postgresql://127.0.0.1:1/none")  # never connected
    whole_files = context(tmp_path, db)
    use_checkpoints(whole_files, db, None, "asr", "emb", "")
    assert whole_files.checkpoints is None and whole_files.resume_at is _from_the_start
    windowed = context(tmp_path, db)
    use_checkpoints(windowed, db, lambda p: None, "asr", "emb", "")  # type: ignore[arg-type]
    assert windowed.checkpoints is not None and windowed.resume_at is not _from_the_start


def test_restored_windows_count_as_transcribed_and_set_the_language(tmp_path: Path) -> None:
    """Windows 0-1 restored: window 2 (last) through the model frees the file and completes the video."""
    a = WindowAssembly()
    assert a.restore(REF.id, [kept(0), kept(1)]) is None
    assert a.language(REF.id) == ("de", 0.9)
    file = AudioFile(REF, tmp_path / "v1.m4a", 1)
    assert a.transcribed(file, 2, True)
    whole = a.add_embedded(file, kept(2, last=True).result, kept(2).vectors)
    assert whole is not None and whole.transcript.video == REF
    assert [s.text for s in whole.transcript.segments] == [" w0", " w1", " w2"]
    assert whole.vectors[:, 0].tolist() == [0.0, 1.0, 2.0] and whole.transcript.audio_seconds == 180.0


def test_a_failed_video_takes_no_restored_windows() -> None:
    """A video the model already failed in this run is not put back together from checkpoints."""
    a = WindowAssembly()
    a.drop(REF.id)
    assert a.restore(REF.id, [kept(0), kept(1, last=True)], REF) is None and a.in_flight == 0


def test_the_summary_reports_what_the_model_did_next_to_what_was_stored(tmp_path: Path) -> None:
    """audio_seconds_transcribed is the model stage's audio; audio_seconds the stored videos'."""
    ctx = context(tmp_path, MemoryStore())
    asr, store = ctx.metrics.stages["asr"], ctx.metrics.stages["store"]
    asr.end(asr.begin(), audio_seconds=120.0)
    store.end(store.begin(), audio_seconds=300.0)
    summary = ctx.summary().to_dict()
    assert summary["audio_seconds_transcribed"] == 120.0 and summary["audio_seconds"] == 300.0
