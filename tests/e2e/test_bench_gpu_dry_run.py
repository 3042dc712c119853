"""``python -m bench.gpu --dry-run`` as CI runs it: the GPU check's CPU path end to end (the real
``bench.accelerator --real`` pipeline child, the ASR stage's out-of-memory halving with the bundled
tiny.en), so the script a lent GPU box runs once cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]


def test_dry_run_reports_every_step_and_the_batch_halving(tmp_path: Path) -> None:
    """Exit 0; each step ok or skipped (NVML, with no GPU, saying why); the simulated out-of-memory
    error halves ASR_BATCH_SIZE 16 → 8 → 4 with a ``tune`` event each; the Markdown names each step."""
    cmd = [sys.executable, "-m", "bench.gpu", "--dry-run", "--out-dir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = {s["name"]: s for s in report["steps"]}
    assert [name.split()[0] for name in steps] == ["0", "1", "2", "3", "4"]
    assert all(s["status"] in ("ok", "skipped") for s in steps.values()), steps
    assert steps["1 bench tiny.en (bundled)"]["status"] == "ok"
    nvml = steps["2 nvml tiny.en (bundled)"]
    assert nvml["status"] == "ok" or nvml["note"]

    bench = report["models"]["tiny.en (bundled)"]["bench"]
    assert bench["audio_s"] > 0 and 0 < bench["device_busy"] <= 1 and bench["ceiling_ratio"] > 0
    assert bench["cpu_s_per_audio_hour"]["asr"] > 0 and bench["cores_at_300x"]

    oom = report["oom"]
    assert oom["mode"] == "simulated" and oom["sequence"] == [16, 8, 4] and oom["final_batch"] == 4
    assert [(t["before"], t["after"]) for t in oom["tune"]] == [(16, 8), (8, 4)]
    assert [a["outcome"] for a in oom["attempts"]] == ["out of memory", "out of memory", "fit"]
    assert oom["windows_ok"] == oom["windows"] and oom["segments"] > 0 and not oom["errors"]

    markdown = (tmp_path / "gpu_check.md").read_text()
    assert all(name in markdown for name in steps) and "16 (out of memory) → 8" in markdown
    assert markdown.strip() in proc.stdout
