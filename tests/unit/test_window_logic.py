"""The engine's own logic for long videos: windows put back together, the queue ahead of the model
counted in speech chunks, out-of-memory detection, the language rule and the VRAM batch size."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog

from ytingest.config import Settings
from ytingest.errors import ConfigError, ModelError
from ytingest.items import (
    AudioFile,
    DecodedAudio,
    PreparedAudio,
    Segment,
    TranscribedWindow,
    VideoRef,
    WindowResult,
)
from ytingest.models.asr import (
    MAX_BATCH,
    VRAM_PER_CHUNK,
    VRAM_RESERVED,
    AsrResult,
    check_language,
    fit_batch_size,
    is_out_of_memory,
)
from ytingest.pipeline.assembly import WindowAssembly
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.queues import StageQueue, take_waiting
from ytingest.stages.description import PIPELINE, metrics_for
from ytingest.stages.transcribe import CLIMB_AFTER, _transcribe_fitting, window_weight
from ytingest.testing.fakes import MemoryStore

FILE = AudioFile(VideoRef("v1", "u"), Path("/nowhere/v1.m4a"), 1)


def _seg(start: float, text: str, speaker: str | None = "Ann") -> Segment:
    return Segment(0, start, start + 1.0, text, speaker=speaker, speaker_score=0.9)


def _window(chunks: int, *, index: int = 0, last: bool = True, video: str = "v1") -> DecodedAudio:
    prepared = PreparedAudio(
        np.zeros(16_000, dtype=np.float32), chunks=tuple({"offset": 0.0} for _ in range(chunks)), index=index
    )
    return DecodedAudio(AudioFile(VideoRef(video, "u"), Path(f"/nowhere/{video}"), 1), prepared)


def test_windows_finished_out_of_order_give_one_transcript_in_time_order() -> None:
    a = WindowAssembly()
    second = WindowResult(1, False, (_seg(310.0, "b"),), 300.0, "en")
    third = WindowResult(2, True, (_seg(620.0, "c"), _seg(615.0, "c0")), 50.0, "en")
    first = WindowResult(0, False, (_seg(5.0, "a"),), 300.0, "de", 0.93)
    assert a.add(FILE, second) is None and a.add(FILE, third) is None
    assert a.language("v1") == ("en", None)
    t = a.add(FILE, first)
    assert t is not None and a.in_flight == 0
    assert [s.text for s in t.segments] == ["a", "b", "c0", "c"]
    assert [s.idx for s in t.segments] == [0, 1, 2, 3]
    assert t.audio_seconds == 650.0
    assert (t.language, t.language_probability) == ("de", 0.93)  # the first window's detection


def test_a_dropped_video_ignores_its_later_windows_and_fails_once() -> None:
    a = WindowAssembly()
    assert a.add(FILE, WindowResult(0, False, (_seg(1.0, "a"),), 300.0, "en")) is None
    assert a.drop("v1") is True and a.drop("v1") is False
    assert a.failed("v1") and a.in_flight == 0
    assert a.add(FILE, WindowResult(1, True, (_seg(301.0, "b"),), 10.0, "en")) is None


def test_speaker_id_failing_on_one_window_clears_the_labels_of_the_whole_video() -> None:
    a = WindowAssembly()
    a.add(FILE, WindowResult(0, False, (_seg(1.0, "a"),), 300.0, "en"))
    t = a.add(FILE, WindowResult(1, True, (_seg(301.0, "b", None),), 10.0, "en", warning="speakers failed"))
    assert t is not None and t.warning == "speakers failed"
    assert {(s.speaker, s.speaker_score) for s in t.segments} == {(None, None)}


async def test_the_queue_ahead_of_the_model_counts_speech_chunks() -> None:
    q: StageQueue[DecodedAudio] = StageQueue(8, weight=window_weight)
    q.put_nowait(_window(5))
    q.put_nowait(_window(2))
    assert q.qsize() == 7 and not q.full()
    q.put_nowait(_window(3))  # room for one more item while under the limit
    assert q.qsize() == 10 and q.full()
    put = asyncio.create_task(q.put(_window(1)))
    await asyncio.sleep(0.01)
    assert not put.done()  # waits for room
    q.get_nowait()
    await asyncio.wait_for(put, 1)
    assert q.qsize() == 6
    empty: StageQueue[DecodedAudio] = StageQueue(2, weight=window_weight)
    empty.put_nowait(_window(40))  # an empty queue always takes one window, however big
    assert empty.full()


def test_a_worker_takes_waiting_windows_until_they_fill_a_batch() -> None:
    inbox: asyncio.Queue[DecodedAudio | None] = asyncio.Queue()
    for w in (_window(3, video="b"), _window(4, video="c"), _window(2, video="d"), None):
        inbox.put_nowait(w)
    group, ended = take_waiting(inbox, _window(1, video="a"), 8, window_weight)
    assert [d.file.video.id for d in group] == ["a", "b", "c"] and not ended
    group, ended = take_waiting(inbox, inbox.get_nowait() or _window(1), 8, window_weight)
    assert [d.file.video.id for d in group] == ["d"] and ended


def test_out_of_memory_is_told_apart_from_other_model_errors() -> None:
    assert is_out_of_memory(RuntimeError("CUDA failed with error out of memory"))
    assert is_out_of_memory(RuntimeError("CUBLAS_STATUS_ALLOC_FAILED"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"))


def test_an_english_only_model_refuses_another_language() -> None:
    assert check_language("tiny.en", None, multilingual=False) == "en"
    assert check_language("tiny.en", "EN", multilingual=False) == "en"
    with pytest.raises(ConfigError, match="English-only"):
        check_language("tiny.en", "de", multilingual=False)
    assert check_language("large-v3", None, multilingual=True) is None
    assert check_language("large-v3", " de ", multilingual=True) == "de"
    assert check_language("large-v3", "", multilingual=True) is None


def test_the_asr_batch_fits_the_free_vram() -> None:
    gib = 2**30
    assert fit_batch_size(VRAM_RESERVED + 4 * VRAM_PER_CHUNK) == 4
    assert fit_batch_size(VRAM_RESERVED) == 1  # never below one chunk
    assert fit_batch_size(80 * gib) == MAX_BATCH
    # a 16 GB card with large-v3 in float16 loaded (~3.1 GB): about 12 GB free
    assert 20 <= fit_batch_size(12 * gib) <= MAX_BATCH


class FlakyModel:
    """A preparing transcriber whose model runs out of memory above ``fits`` chunks per call and
    whose language detection breaks on the windows of ``bad_video``."""

    name = "flaky"

    def __init__(self, fits: int, bad_video_samples: int = -1) -> None:
        self.fits, self.bad_samples, self.sizes = fits, bad_video_samples, []  # type: list[int]

    def prepare_windows(self, path: Path) -> Any:
        raise AssertionError("not used")

    def detect_language(self, item: PreparedAudio) -> tuple[str, float | None]:
        if len(item.audio) == self.bad_samples:
            raise ModelError("language detection failed: RuntimeError: cuDNN error")
        return "en", None

    def transcribe_prepared(
        self, items: list[PreparedAudio], *, batch_size: int | None = None, languages: Any = None
    ) -> list[AsrResult]:
        self.sizes.append(batch_size or 0)
        if (batch_size or 8) > self.fits:
            raise ModelError("CUDA failed with error out of memory", out_of_memory=True)
        return [AsrResult((Segment(0, 0.0, 1.0, "hi"),), p.seconds, "en", p.audio) for p in items]

    def transcribe(self, path: Path) -> AsrResult:
        raise AssertionError("not used")


def _ctx(tmp_path: Path) -> RunContext:
    settings = Settings(ytingest_home=tmp_path, asr_batch_size=8)
    ctx = RunContext(settings, MemoryStore(), metrics_for(PIPELINE, settings))
    ctx.tuning.asr_batch_max = 8
    return ctx


async def test_out_of_memory_halves_until_it_fits_then_climbs_back(tmp_path: Path) -> None:
    ctx, model = _ctx(tmp_path), FlakyModel(fits=2)
    with ThreadPoolExecutor(1) as pool, structlog.testing.capture_logs() as events:
        first = await _transcribe_fitting(ctx, model, pool, [_window(3)])
        assert isinstance(first[0], TranscribedWindow) and ctx.tuning.asr_batch_size == 2
        model.fits = 8  # the card has room again
        for _ in range(CLIMB_AFTER):
            await _transcribe_fitting(ctx, model, pool, [_window(3)])
        assert ctx.tuning.asr_batch_size == 4  # doubled once after CLIMB_AFTER calls that fit
        for _ in range(CLIMB_AFTER):
            await _transcribe_fitting(ctx, model, pool, [_window(3)])
    assert ctx.tuning.asr_batch_size == 8 and model.sizes[:3] == [8, 4, 2]
    tunes = [(e["before"], e["after"]) for e in events if e["event"] == "tune"]
    assert tunes == [(8, 4), (4, 2), (2, 4), (4, 8)]


async def test_out_of_memory_at_one_chunk_fails_the_windows(tmp_path: Path) -> None:
    ctx, model = _ctx(tmp_path), FlakyModel(fits=0)
    with ThreadPoolExecutor(1) as pool:
        out = await _transcribe_fitting(ctx, model, pool, [_window(1), _window(1, video="v2")])
    assert all(isinstance(o, ModelError) and o.out_of_memory for o in out) and ctx.tuning.asr_batch_size == 1


async def test_a_failed_language_detection_fails_only_its_video_and_is_not_out_of_memory(
    tmp_path: Path,
) -> None:
    ctx = _ctx(tmp_path)
    bad = DecodedAudio(
        AudioFile(VideoRef("bad", "u"), Path("/nowhere/bad"), 1),
        PreparedAudio(np.zeros(999, dtype=np.float32)),
    )
    model = FlakyModel(fits=8, bad_video_samples=999)
    with ThreadPoolExecutor(1) as pool:
        out = await _transcribe_fitting(ctx, model, pool, [_window(2), bad, _window(2, video="v3")])
    assert isinstance(out[0], TranscribedWindow) and isinstance(out[2], TranscribedWindow)
    assert isinstance(out[1], ModelError) and not out[1].out_of_memory
    assert ctx.tuning.asr_batch_size == 8  # no halving for an error that is not about memory
