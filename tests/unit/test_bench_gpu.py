"""The parts of ``bench.gpu`` that only a GPU box reaches, on made-up inputs: the models it finds in
a HuggingFace cache, the NVML sampler's summary, and the report of a real run."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from types import SimpleNamespace

import pynvml
import pytest

from bench.gpu import BUNDLED, Report, find_models, markdown, sampling


def _model(hub: Path, repo: str, *, ct2: bool = True) -> Path:
    snap = hub / f"models--{repo.replace('/', '--')}" / "snapshots" / "0123456789ab"
    snap.mkdir(parents=True)
    (snap / ("model.bin" if ct2 else "model.safetensors")).write_bytes(b"")
    return snap


def test_models_found_in_the_huggingface_cache_turbo_and_large_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CTranslate2 Whisper snapshots only (not a transformers Whisper, not another model)."""
    hub = tmp_path / "hf" / "hub"
    small = _model(hub, "Systran/faster-whisper-small")
    turbo = _model(hub, "mobiuslabsgmbh/faster-whisper-large-v3-turbo")
    _model(hub, "openai/whisper-large-v3", ct2=False)
    _model(hub, "Systran/not-an-asr-model")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    found = find_models([str(small)])  # given again with --model: listed once
    assert found == {
        BUNDLED: "bundled",
        "mobiuslabsgmbh/faster-whisper-large-v3-turbo": str(turbo),
        "Systran/faster-whisper-small": str(small),
    }


def test_sampling_sums_up_utilisation_and_peak_vram(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mean/p50/p90 of NVML's utilisation and the peak of VRAM used, from a thread every 0.5 s."""
    ticks = itertools.count()
    monkeypatch.setattr(pynvml, "nvmlDeviceGetUtilizationRates", lambda h: SimpleNamespace(gpu=90))
    monkeypatch.setattr(
        pynvml, "nvmlDeviceGetMemoryInfo", lambda h: SimpleNamespace(used=(100 + next(ticks)) << 20)
    )
    stats: dict[str, float] = {}
    with sampling(object(), stats):
        time.sleep(1.2)
    assert stats["samples"] >= 2 and stats["util_mean"] == stats["util_p90"] == 90
    assert stats["vram_peak_mib"] == 100 + stats["samples"] - 1


def test_the_report_of_a_real_run_shows_gpu_columns_and_the_halving() -> None:
    """GPU utilisation, peak VRAM, summed cores, the VRAM held back and each batch size tried."""
    rep = Report(dry_run=False, budget_s=450)
    bench = {"device_busy": 0.91, "ceiling_ratio": 0.88, "audio_s_per_s": 410.0, "speed": 465.2}
    bench |= {"cpu_s_per_audio_hour": {"decode": 40.0}, "cores_at_300x": {"decode": 3.3, "asr": 0.7}}
    gpu = {"samples": 300, "util_mean": 87.5, "util_p50": 92, "util_p90": 99, "vram_peak_mib": 5120}
    rep.data["models"] = {"large-v3": {"bench": bench, "gpu": gpu}}
    attempts = [{"batch": b, "outcome": "out of memory"} for b in (1024, 512, 256, 128)]
    rep.data["oom"] = {"mode": "real", "device": "cuda", "windows": 1026, "chunks": 1026, "tune": []}
    rep.data["oom"] |= {"vram": {"held_mib": 76000}, "attempts": [*attempts, {"batch": 64, "outcome": "fit"}]}
    text = markdown(rep)
    assert "| large-v3 | 0.91 | 0.88 | 410.0 | 465.2 | 87.5/92/99 | 5120 | 4.0 |" in text
    assert "| decode | 40.0 (3.3) |" in text and "'held_mib': 76000" in text
    assert "1024 (out of memory) → 512 (out of memory) → 256" in text and "64 (fit)" in text
