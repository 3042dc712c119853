"""The engine's own logic for keeping an accelerator fed: speakers as a stage of their own, model
turns only on a CPU, the queue ahead of the model sized from the fitted batch, the redecode count,
and the speakers stage's verdict."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.unit.test_engine_logic import make_engine
from ytingest.config import Settings
from ytingest.items import AnonymousVoice, AudioFile, Segment, TranscribedWindow, VideoRef, Word
from ytingest.monitor.diagnose import Knobs, diagnose
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.turns import ModelTurns, turns_wanted
from ytingest.ports import Tagged
from ytingest.stages.description import PIPELINE, inbox_for, metrics_for
from ytingest.stages.speakers import label_window, speakers_worker
from ytingest.stages.transcribe import run_settings
from ytingest.testing.fakes import MemoryStore


def _window(file: AudioFile, index: int, *, last: bool = False, offset: float = 0.0) -> TranscribedWindow:
    words = (Word(1.0, 1.5, "hello"), Word(1.6, 2.0, "there"))
    seg = Segment(0, 1.0, 2.0, f"w{index}", words=words)
    audio = np.zeros(16_000 * 3, dtype=np.float32)
    return TranscribedWindow(file, (seg,), audio, 3.0, "en", None, offset, index, last)


class _Tagger:
    """Names every segment after the window it is in; fails on the window numbers in ``fail``."""

    model = "fake-voice"

    def __init__(self, fail: set[int] | None = None) -> None:
        self.fail = fail or set()
        self.threads: list[str] = []

    def tag(self, audio: Any, rate: int, segments: tuple[Segment, ...], *, window: int = 0) -> Tagged:
        import threading

        self.threads.append(threading.current_thread().name)
        if window in self.fail:
            raise RuntimeError("encoder broke")
        voice = AnonymousVoice(f"?{window}.0", np.ones(4, dtype=np.float32), 1.0)
        return Tagged(tuple(replace(s, speaker=voice.key) for s in segments), (voice,))


def test_a_window_is_tagged_on_its_own_time_then_moved_onto_the_video_without_words() -> None:
    """label_window tags in the window's time, then shifts by its offset and drops the words."""
    file = AudioFile(VideoRef("v", "u"), Path("/nowhere/v.m4a"), 1)
    result = label_window(_Tagger(), _window(file, 2, offset=600.0))  # type: ignore[arg-type]
    assert [(s.start, s.end, s.speaker, s.words) for s in result.segments] == [(601.0, 602.0, "?2.0", ())]
    assert result.index == 2 and result.seconds == 3.0 and [v.key for v in result.voices] == ["?2.0"]


def test_a_failing_tagger_keeps_the_transcript_with_a_warning() -> None:
    """Speaker ID failing on a window: its segments stay, unlabelled, and the window says why."""
    file = AudioFile(VideoRef("v", "u"), Path("/nowhere/v.m4a"), 1)
    result = label_window(_Tagger(fail={0}), _window(file, 0, last=True))  # type: ignore[arg-type]
    assert [s.speaker for s in result.segments] == [None]
    assert result.warning is not None and "encoder broke" in result.warning


async def test_speakers_tag_windows_in_their_own_threads_and_embedding_puts_videos_together(
    tmp_path: Path,
) -> None:
    """Windows are tagged in the speakers executor (not the model's) and handed on one by one; a
    failed video's windows are dropped. The embed stage encodes them a window at a time and puts
    out each video whole once its last window is in, every row next to its own vector."""
    from ytingest.items import EmbeddedTranscript, LabelledWindow
    from ytingest.stages.embed import run_batcher
    from ytingest.testing.fakes import FakeEmbedder

    settings = Settings(ytingest_home=tmp_path, batch_size=1, batch_max_age_s=60)
    ctx = RunContext(settings, MemoryStore(), metrics_for(PIPELINE, settings))
    file, gone = (
        AudioFile(VideoRef("v", "u"), tmp_path / "v", 5),
        AudioFile(VideoRef("x", "u"), tmp_path / "x", 1),
    )
    ctx.windows.drop("x")  # the model failed on another window of x
    inbox: asyncio.Queue[TranscribedWindow | None] = asyncio.Queue()
    labelled: asyncio.Queue[LabelledWindow | None] = asyncio.Queue()
    for w in (_window(file, 1, last=True, offset=3.0), _window(gone, 0), _window(file, 0)):
        inbox.put_nowait(w)
    inbox.put_nowait(None)
    tagger = _Tagger()
    with ThreadPoolExecutor(1, thread_name_prefix="ytingest-speakers") as pool:
        speakers = ctx.metrics.stages["speakers"]
        await speakers_worker(ctx, tagger, pool, inbox, labelled, counters=speakers)  # type: ignore[arg-type]
    assert [w.result.index for w in list(labelled._queue)] == [1, 0]  # type: ignore[attr-defined]
    assert tagger.threads and all(t.startswith("ytingest-speakers") for t in tagger.threads)
    assert ctx.metrics.stages["speakers"].done == 1  # the video's last window went through

    class Numbered(FakeEmbedder):
        def encode(self, texts: Any, batch_size: int | None = None) -> Any:
            super().encode(texts, batch_size)
            return np.array([[float(t[1:]), 0, 0, 0] for t in texts], dtype=np.float32)  # "w7" -> 7

    labelled.put_nowait(None)
    out: asyncio.Queue[EmbeddedTranscript | None] = asyncio.Queue()
    embedder = Numbered()
    with ThreadPoolExecutor(1) as pool:
        await run_batcher(ctx, embedder, pool, labelled, out, counters=ctx.metrics.stages["embed"])
    whole = out.get_nowait()
    assert whole is not None and out.empty() and embedder.batches == [1, 1]  # a window at a time
    rows = [(s.idx, s.text, s.start, s.speaker) for s in whole.transcript.segments]
    assert rows == [(0, "w0", 1.0, "?0.0"), (1, "w1", 4.0, "?1.0")]
    assert whole.vectors[:, 0].tolist() == [0.0, 1.0] and whole.transcript.audio_seconds == 6.0
    assert ctx.metrics.stages["embed"].done == 1


def test_the_model_is_done_with_a_video_once_each_of_its_windows_is_through(tmp_path: Path) -> None:
    """Windows through the model in any order: done (its audio file may go) only with all of them."""
    settings = Settings(ytingest_home=tmp_path)
    ctx = RunContext(settings, MemoryStore(), metrics_for(PIPELINE, settings))
    file = AudioFile(VideoRef("v", "u"), tmp_path / "v.m4a", 5)
    assert not ctx.windows.transcribed(file, 2, last=True)
    assert not ctx.windows.transcribed(file, 0, last=False)
    assert ctx.windows.transcribed(file, 1, last=False)


async def test_model_turns_off_let_embed_and_asr_run_together() -> None:
    """Disabled turns (a GPU model) never make an embed call wait for ASR, nor ASR for embed."""
    turns = ModelTurns(enabled=False)
    async with turns.asr(), turns.alone(), turns.asr():
        pass  # would deadlock with turns on: the embed waits for the open ASR turn
    on = ModelTurns()
    async with on.asr():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05), on.alone():
                pass


@pytest.mark.parametrize(
    ("setting", "device", "wanted"),
    [("auto", "cpu", True), ("auto", "cuda", False), ("on", "cuda", True), ("off", "cpu", False)],
)
def test_model_turns_are_on_only_where_asr_and_embedding_share_the_cpu(
    setting: str, device: str, wanted: bool
) -> None:
    """MODEL_TURNS=auto turns them on for a CPU model only; on/off force it."""
    assert turns_wanted(setting, device) is wanted


def test_the_queue_ahead_of_the_model_holds_asr_queue_size_fitted_batches(tmp_path: Path) -> None:
    """A batch of 32 fitted from VRAM: the run's ASR_BATCH_SIZE is 32 and asr_q holds 2 × 32 chunks."""

    class Fitted:
        batch_size = 32

    settings = Settings(ytingest_home=tmp_path, asr_queue_size=2)
    run = run_settings(settings, Fitted())  # type: ignore[arg-type]
    asr = next(st for st in PIPELINE if st.name == "asr")
    assert run.asr_batch_size == 32 and inbox_for(asr, run).maxsize == 64
    assert run_settings(settings, object()) is settings  # type: ignore[arg-type]


async def test_a_run_reports_how_many_chunks_the_model_decoded_again(tmp_path: Path) -> None:
    """asr_redecoded_chunks in the run summary counts the transcriber's redecodes of this run only."""
    from ytingest.testing.fakes import FakeTranscriber

    class Redoing(FakeTranscriber):
        chunks_redone = 0

        def transcribe(self, path: Path) -> Any:
            type(self).chunks_redone += 1
            return super().transcribe(path)

    Redoing.chunks_redone = 7  # from an earlier run of the same model
    engine, _ = make_engine(tmp_path, transcriber=Redoing())
    async with engine:
        summary = await engine.stream("chan")
    assert summary.done == 10 and summary.to_dict()["asr_redecoded_chunks"] == 10


def test_a_saturated_speakers_stage_gets_its_own_advice(tmp_path: Path) -> None:
    """spk_q backed up and the speakers stage busy: the verdict names it and SPEAKER_WORKERS."""
    from tests.unit.test_diagnose import snap

    window = [snap({"speakers": 8}, {"speakers": 1.0, "asr": 0.5}) for _ in range(3)]
    verdict = diagnose(window, Knobs(io_workers=4, asr_workers=1, batch_size=768, db_workers=2))
    assert verdict.stage == "speakers" and verdict.knob == "SPEAKER_WORKERS" and verdict.suggested == 2
