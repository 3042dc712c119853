"""Verdicts on one long video, through the real CLI: `stream` of a 12-minute episode of real
speech (the AMI meeting clips and the spoken samples, 25 s in every minute, silence between:
the model's work is 12 windows, not 12 minutes of speech), the real model, DECODE_WINDOW_S=60.
ASR_BATCH_SIZE=1 with ASR_QUEUE_SIZE=16 (asr_q holds 16 speech chunks, as by default) makes each
window its own model call, as each window of a long dense video is.

While the model works on any window before the last, the announced verdict is ``asr``; before
the audio-waiting rule it flipped to ``none`` (one video's windows never half-fill asr_q)."""

from __future__ import annotations

import json
import wave
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.conftest import Cli
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.channel import SAMPLES, Episode

pytestmark = pytest.mark.slow
RATE = 16_000
MINUTES = 12
SPEECH_S = 25.0  # real speech at the start of every minute
# the monitor's window and tick, shorter than the defaults (5 s, 1 s) so that its first verdict
# comes well before the last window even where the model takes a window in half a second
DIAGNOSE_WINDOW_S, MONITOR_INTERVAL_S = 3.0, 0.5


def _pcm(path: Path) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    with av.open(str(path)) as container:
        decoded = container.decode(audio=0)
        frames = [g.to_ndarray().reshape(-1) for f in decoded for g in resampler.resample(f)]
    return np.concatenate(frames)


def sparse_episode(folder: Path, minutes: int = MINUTES) -> Episode:
    """``minutes`` of 16 kHz WAV: each minute starts with SPEECH_S of a real recording (the two AMI
    clips, then the spoken samples, in turn) and is silent after it."""
    clips = [_pcm(SAMPLES / "real" / f"{c}.mp3") for c in ("tst00", "tst01")]
    clips += [_pcm(p) for p in sorted(SAMPLES.glob("ep0*.mp3"))]
    audio = np.zeros(minutes * 60 * RATE, np.int16)
    for k in range(minutes):
        piece = clips[k % len(clips)][: int(SPEECH_S * RATE)]
        audio[k * 60 * RATE : k * 60 * RATE + len(piece)] = piece
    path = folder / f"sparse-{minutes}min.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(audio.tobytes())
    title = f"{minutes} minutes, real speech each minute"
    return Episode(f"sparse-{minutes}min", title, "", path, minutes * 60.0)


def _at(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["timestamp"]).timestamp()


def events_of(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_a_twelve_minute_video_is_asr_while_the_model_works_never_none_before_its_last_window(
    cli: Cli, tmp_path: Path
) -> None:
    """Announced verdicts (``bottleneck`` events) between the model's first and last window: only
    ``asr``, the first of them within a few ticks of DIAGNOSE_WINDOW_S after the model's first
    window (it averages that much of a busy model first, and no more; a time, not a count of
    windows, which depends on the machine's speed); the video is stored."""
    episode = sparse_episode(tmp_path)
    cli.env.update(SPEAKERS="false", DECODE_WINDOW_S="60", ASR_BATCH_SIZE="1", ASR_QUEUE_SIZE="16")
    cli.env.update(DIAGNOSE_WINDOW_S=str(DIAGNOSE_WINDOW_S), MONITOR_INTERVAL_S=str(MONITOR_INTERVAL_S))
    with serve_in_thread(ChannelServer([episode])) as ch:
        run = cli("stream", ch.feed_url, "--json", "--log-format", "json", timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout)["done"] == 1
    events = events_of(run.stderr)
    starts = [i for i, e in enumerate(events) if e["event"] == "transcribe_start"]
    windows = [events[i]["window"] for i in starts]
    assert windows == sorted(windows) and len(set(windows)) >= MINUTES - 1, windows
    last = starts[windows.index(max(windows))]  # the last window goes into the model
    said = [(i, e["stage"]) for i, e in enumerate(events) if e["event"] == "bottleneck"]
    while_working = [stage for i, stage in said if starts[0] < i < last]
    assert while_working and set(while_working) == {"asr"}, said
    first_asr = next(i for i, stage in said if stage == "asr")
    waited = _at(events[first_asr]) - _at(events[starts[0]])
    assert waited < DIAGNOSE_WINDOW_S + 6 * MONITOR_INTERVAL_S, (waited, said)  # a few ticks, not more
    verdict = next(e for e in events if e["event"] == "bottleneck" and e["stage"] == "asr")
    assert verdict["evidence"]["model_waiting_s"] > 0
