"""The model stage survives its errors: the real faster-whisper model wrapped so that it fails.

- out of memory above a batch size: halved, retried, stored complete; nothing quarantined;
- another runtime error on one video: that video fails transient with its audio kept, the others
  are stored, and ``retry`` stores it (without downloading it again) once the error is gone;
- the speaker tagger failing on one video: it is stored without labels and with a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest
import structlog

from tests.conftest import database_on
from ytingest import Engine, Settings
from ytingest.models.asr import WhisperTranscriber
from ytingest.testing import ChannelServer, sample_episodes
from ytingest.testing.channel import SAMPLES
from ytingest.testing.long_episodes import long_episode

pytestmark = pytest.mark.slow

OOM = "CUDA failed with error out of memory"


@pytest.fixture(scope="module")
def asr() -> Iterator[WhisperTranscriber]:
    """One real model for the module (loading it is the slow part); batches of 8 chunks."""
    yield WhisperTranscriber(batching="cross", batch_size=8)


class FailingForward:
    """The real batched forward pass, failing as ``fails(features)`` says."""

    def __init__(self, forward: Callable[..., Any], fails: Callable[[np.ndarray], str | None]) -> None:
        self.forward, self.fails, self.raised = forward, fails, 0

    def __call__(self, features: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        if (message := self.fails(features)) is not None:
            self.raised += 1
            raise RuntimeError(message)
        return self.forward(features, *args, **kwargs)


async def _rows(dsn: str) -> list[tuple[str, int, float, float, str, str | None]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT video_id, idx, start_s, end_s, text, speaker FROM segments ORDER BY 1, 2"
        )
    finally:
        await conn.close()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _same_voices(rows: list[tuple[str, int, float, float, str, str | None]]) -> list[tuple[object, ...]]:
    """The rows with each channel ``unknown-N`` renamed by its first row: the numbers follow the
    order videos were stored in (which concurrency varies), who-is-who must not."""
    names: dict[str, str] = {}
    out = []
    for *rest, speaker in rows:
        if speaker is not None and speaker.startswith("unknown-"):
            speaker = names.setdefault(speaker, f"voice-{len(names)}")
        out.append((*rest, speaker))
    return out


def _settings(home: Path, dsn: str, **extra: Any) -> Settings:
    return Settings(ytingest_home=home, database_url=dsn, io_workers=3, **extra)


@pytest.fixture
def second_dsn(pg_server: str) -> Iterator[str]:
    with database_on(pg_server, "ytingest_oom") as dsn:
        yield dsn


async def test_out_of_memory_halves_the_batch_and_loses_nothing(
    tmp_path: Path, fresh_dsn: str, second_dsn: str, asr: WhisperTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A card that holds 2 chunks at once: ASR_BATCH_SIZE 8 -> 4 -> 2, the same windows again."""
    episodes = [*sample_episodes()[:2], long_episode(4, tmp_path / "long")]  # 4 min: 8+ chunks
    normal_dsn, oom_dsn = fresh_dsn, second_dsn
    async with ChannelServer(episodes=episodes) as channel:
        async with Engine(_settings(tmp_path / "a", normal_dsn), transcriber=asr) as engine:
            normal = await engine.stream(channel.feed_url)
        wrapper = FailingForward(asr._batcher._pipe.forward, lambda f: OOM if len(f) > 2 else None)
        monkeypatch.setattr(asr._batcher._pipe, "forward", wrapper)
        with structlog.testing.capture_logs() as events:
            async with Engine(_settings(tmp_path / "b", oom_dsn), transcriber=asr) as engine:
                squeezed = await engine.stream(channel.feed_url)
                knobs = engine.status_document()["knobs"]
    assert normal.done == squeezed.done == 3 and squeezed.failed == 0
    tunes = [e for e in events if e["event"] == "tune" and e["knob"] == "ASR_BATCH_SIZE"]
    assert [(t["before"], t["after"]) for t in tunes[:2]] == [(8, 4), (4, 2)]
    assert wrapper.raised >= 2 and knobs["asr_batch_size"] == 8  # the run's tuning is gone: settings again
    # the same segments, text, timestamps and voices
    assert _same_voices(await _rows(oom_dsn)) == _same_voices(await _rows(normal_dsn))
    assert not (tmp_path / "b" / "quarantine").exists()
    assert not any(e["event"] == "video_failed" for e in events)


async def test_a_model_error_fails_one_video_transient_and_retry_stores_it(
    tmp_path: Path, fresh_dsn: str, asr: WhisperTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    episodes = sample_episodes()[:3]
    bad = episodes[1]
    bad_chunk = asr.prepare(bad.path).features
    assert bad_chunk is not None

    def fails(features: np.ndarray) -> str | None:
        hit = any(np.allclose(f, bad_chunk[0], atol=1e-4) for f in features)
        return "cuDNN error: CUDNN_STATUS_EXECUTION_FAILED" if hit else None

    wrapper = FailingForward(asr._batcher._pipe.forward, fails)
    monkeypatch.setattr(asr._batcher._pipe, "forward", wrapper)
    settings = _settings(tmp_path, fresh_dsn)
    async with ChannelServer(episodes=episodes) as channel:
        async with Engine(settings, transcriber=asr) as engine:
            first = await engine.stream(channel.feed_url)
            status = await engine.status()
            monkeypatch.setattr(asr._batcher._pipe, "forward", wrapper.forward)  # the error is gone
            hits_before = channel.hits[bad.id]
            with structlog.testing.capture_logs() as events:
                again = await engine.retry()
            after = await engine.status()
    assert wrapper.raised >= 1
    assert (first.done, first.failed) == (2, 1)
    failure = first.failures[0]
    assert failure.video_id == bad.id and failure.stage == "asr"
    assert "CUDNN_STATUS_EXECUTION_FAILED" in failure.reason
    assert not (tmp_path / "quarantine").exists()
    assert [f["video_id"] for f in status["failures"]] == [bad.id]
    assert (again.done, again.failed) == (1, 0)
    assert channel.hits[bad.id] == hits_before  # the kept audio was used, not downloaded again
    assert any(e["event"] == "download_reused" for e in events)
    assert after["videos"]["done"] == 3 and after["videos"].get("failed", 0) == 0
    assert list((tmp_path / "kept").iterdir()) == []


async def test_speaker_id_failing_on_one_video_stores_it_without_labels(
    tmp_path: Path, fresh_dsn: str, asr: WhisperTranscriber
) -> None:
    episodes = sample_episodes()[:3]
    bad = episodes[0]
    bad_samples = len(asr.prepare(bad.path).audio)
    settings = _settings(tmp_path, fresh_dsn, voices_dir=SAMPLES / "voices")
    async with Engine(settings, transcriber=asr) as engine:
        real = await engine.speaker_tagger()
    assert real is not None

    class FailsOnOne:
        model = real.model

        def tag(self, audio: np.ndarray, rate: int, segments: Any, *, window: int = 0) -> Any:
            if len(audio) == bad_samples:
                raise RuntimeError("speaker encoder: CUDA error: an illegal memory access was encountered")
            return real.tag(audio, rate, segments, window=window)

    async with ChannelServer(episodes=episodes) as channel:
        async with Engine(settings, transcriber=asr, tagger=FailsOnOne()) as engine:
            summary = await engine.stream(channel.feed_url)
            status = await engine.status()
    rows = await _rows(fresh_dsn)
    assert (summary.done, summary.failed) == (3, 0)
    assert {r[5] for r in rows if r[0] == bad.id} == {None}
    assert all(r[5] is not None for r in rows if r[0] != bad.id)
    assert [w["video_id"] for w in status["warnings"]] == [bad.id]
    assert "speaker identification failed" in status["warnings"][0]["warning"]
