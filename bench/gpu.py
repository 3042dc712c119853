"""A prepared GPU check, run once on a lent CUDA box: ``python -m bench.gpu`` (8 minutes wall at most).

0. environment: versions, CUDA as CTranslate2, torch, onnxruntime and nvidia-smi see it, and the
   Whisper models already on the box (nothing is downloaded; ``--model DIR`` adds one);
1. ``bench.accelerator --real`` on each model (a child process; ASR_DEVICE=cuda where CUDA is);
2. while it runs: GPU utilisation and VRAM used, sampled through NVML every 0.5 s;
3. out of memory: the ASR stage's own ``_transcribe_fitting`` halves ASR_BATCH_SIZE from a batch far
   above what fits, with the real model, until one fits (a child process);
4. the report: ``bench/results/gpu_check.{json,md}`` (``--out-dir``); the Markdown is printed.

Each step is time-boxed within ``--budget-s``; a failing step is recorded with its one-line error and
the next one runs. ``--dry-run`` (CI, on the CPU) runs the same code with the bundled tiny.en on the
CPU, tiny inputs and an out-of-memory error simulated above batch 4, so the script cannot rot.
The GPU path has NEVER RUN ON A GPU (``GPU_PATH``): written without one, checked only by the dry run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ytingest.errors import ModelError

if TYPE_CHECKING:
    from ytingest.items import PreparedAudio
    from ytingest.models.asr import AsrResult, WhisperTranscriber

GPU_PATH = "never run on a GPU"  # the card and date of the first real run, once there has been one
ROOT = Path(__file__).absolute().parents[1]  # children run ``python -m`` from here
SAMPLE_S = 0.5
MARK = "BENCH_GPU_CHILD"  # in the environment of every process a step starts, so none outlives it
BUNDLED = "tiny.en (bundled)"
# bench.accelerator (--minutes, --episodes): about 1.5 min for tiny.en and 2.5 for a large model on an
# H100; the time boxes (s) of those steps and of the out-of-memory one
SIZES = {"tiny": (30.0, 2), "large": (15.0, 2), "dry": (1.0, 1)}
BOXES = {"tiny": 150.0, "large": 210.0, "dry": 90.0, "oom": 90.0, "oom dry": 60.0}
REPORT_RESERVE, MIN_BOX = 10.0, 45.0
# The out-of-memory step holds all but OOM_LEAVE of the card's free memory, then asks tiny.en for a batch
# of OOM_START chunks: its encoder's attention scores alone take 27 MB a chunk (6 heads x 1500 x 1500 x
# fp16), 27 GB for 1024, so about 64 fit. Emptying an 80 GB card with tiny.en instead would take over
# 3000 chunks, whose conv output passes 2^31 elements (a cuDNN limit: an error, not out of memory).
OOM_START, OOM_LEAVE = 1024, 3 * 2**30
DRY_OOM = (16, 4)  # dry run: the first batch, and the largest the simulated card fits
# real (tst01, stereo_diarization) and synthetic speech that tiny.en transcribes in one batched pass
# (tst00 runs to 448 tokens of "yeah" and is decoded again: a slow chunk, copied 170 times on a card)
OOM_CLIPS = ("tst01", "stereo_diarization", "ep01-vectors", "ep02-sleep", "ep03-garden", "ep04-bicycle")


class Skip(Exception):
    """A step that cannot run here; its message says why."""


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}")[:300]


@dataclass
class Step:
    name: str
    status: str = "ok"  # ok | skipped | error
    seconds: float = 0.0
    note: str = ""  # the one-line error, or why it was skipped


class Report:
    """What the check found, step by step, against one time budget."""

    def __init__(self, *, dry_run: bool, budget_s: float) -> None:
        self.deadline = time.monotonic() + budget_s
        self.steps: list[Step] = []
        self.data: dict[str, Any] = {"dry_run": dry_run, "gpu_path": GPU_PATH, "budget_s": budget_s}
        self.data["started"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")

    def left(self) -> float:
        return self.deadline - time.monotonic()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Time a step; an exception marks it failed (Skip: skipped) and is not raised further."""
        s, t0 = Step(name), time.monotonic()
        print(f"[bench.gpu] {name} ...", file=sys.stderr, flush=True)
        try:
            yield s
        except Skip as exc:
            s.status, s.note = "skipped", str(exc)
        except Exception as exc:
            s.status, s.note = "error", one_line(exc)
        s.seconds = round(time.monotonic() - t0, 1)
        self.steps.append(s)
        print(f"[bench.gpu] {name}: {s.status} in {s.seconds} s {s.note}", file=sys.stderr, flush=True)


def _probe(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception as exc:
        return {"error": one_line(exc)}


def environment(extra_models: Sequence[str]) -> dict[str, Any]:
    """Versions, CUDA as each library sees it, and the Whisper models on the box (label → --asr-model)."""
    import ctranslate2
    import onnxruntime

    def torch_info() -> dict[str, Any]:
        import torch

        return {"version": torch.__version__, "cuda_available": torch.cuda.is_available()}

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "ctranslate2": {"version": ctranslate2.__version__, "cuda": ctranslate2.get_cuda_device_count()},
        "torch": _probe(torch_info),
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "nvidia_smi": _probe(nvidia_smi),
        "models": find_models(extra_models),
    }


def nvidia_smi() -> list[str] | str:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "not found"
    query = [smi, "--query-gpu=name,memory.total,memory.used,driver_version", "--format=csv"]
    return subprocess.run(query, capture_output=True, text=True, timeout=20, check=True).stdout.splitlines()


def find_models(extra: Sequence[str]) -> dict[str, str]:
    """The bundled tiny.en, CTranslate2 Whisper models in the HuggingFace cache, and ``--model`` dirs."""
    from ytingest.models.asr import resolve_asr_model

    found, seen = {BUNDLED: "bundled"}, {Path(resolve_asr_model("bundled")).resolve()}
    hubs = {Path(p) for p in (os.environ.get("HF_HUB_CACHE"), os.environ.get("HUGGINGFACE_HUB_CACHE")) if p}
    hubs.add(Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")
    dirs = [m.parent for hub in sorted(hubs) for m in sorted(hub.glob("models--*/snapshots/*/model.bin"))]
    dirs = [d for d in dirs if "whisper" in d.parents[1].name.lower()]
    dirs.sort(key=lambda d: ("turbo" not in str(d), "large" not in str(d)))  # what a GPU box runs first
    for d in [*dirs, *(Path(x).expanduser() for x in extra)]:
        if d.resolve() in seen:
            continue
        seen.add(d.resolve())
        repo = d.parents[1].name if d.parent.name == "snapshots" else ""
        label = repo.removeprefix("models--").replace("--", "/") if repo.startswith("models--") else d.name
        found[label if label not in found else f"{label}@{d.name[:8]}"] = str(d)
    return found


def run_child(cmd: list[str], *, box_s: float, work: Path, name: str, env: dict[str, str]) -> str:
    """Run ``cmd`` from the repo root within ``box_s``; its stdout. Past the box it is interrupted;
    a failure raises with the last line of its stderr. Nothing it started outlives it."""
    out_path, err_path = work / f"{name}.out", work / f"{name}.err"
    mark = f"{os.getpid()}-{name}"
    with out_path.open("w") as out, err_path.open("w") as err:
        env = {**env, MARK: mark}
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env, start_new_session=True)
        try:
            rc: int | None = proc.wait(timeout=box_s)
        except subprocess.TimeoutExpired:
            rc = None
            os.killpg(proc.pid, signal.SIGINT)  # its group: Python unwinds, PostgreSQL shuts down fast
        stop_marked(mark, wait_s=10)
        proc.wait()
    if rc is None:
        raise TimeoutError(f"stopped after its time box of {box_s:.0f} s")
    if rc != 0:
        tail = [line for line in err_path.read_text(errors="replace").splitlines() if line.strip()]
        raise RuntimeError(f"exit {rc}: {tail[-1] if tail else 'no stderr'}")
    return out_path.read_text()


def stop_marked(mark: str, *, wait_s: float) -> None:
    """Every process that inherited ``mark`` (MARK in its environment), daemons that left the child's
    group too (an embedded PostgreSQL): given ``wait_s`` to end, then SIGINT, then SIGKILL."""
    import psutil

    def marked() -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if p.environ().get(MARK) == mark and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
        return found

    _, left = psutil.wait_procs(marked(), timeout=wait_s)
    for sig in (signal.SIGINT, signal.SIGKILL):  # SIGINT: PostgreSQL's fast shutdown
        pids = {p.pid for p in left}
        for p in left:
            with contextlib.suppress(psutil.Error):
                if sig == signal.SIGKILL or p.ppid() not in pids:  # a server's own workers go with it
                    p.send_signal(sig)
        _, left = psutil.wait_procs(left, timeout=5)


def visible_gpu() -> Any:
    """The NVML handle of the first device CUDA_VISIBLE_DEVICES shows (Skip where there is none).
    A stand-in for the monitor's device picker: an index there is taken as NVML's (PCI order),
    right with one GPU or CUDA_DEVICE_ORDER=PCI_BUS_ID."""
    import pynvml

    try:
        pynvml.nvmlInit()
        first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
        if first.startswith(("GPU-", "MIG-")):
            return pynvml.nvmlDeviceGetHandleByUUID(first)
        if not first.isdigit() or int(first) >= pynvml.nvmlDeviceGetCount():
            raise Skip(f"no GPU visible (CUDA_VISIBLE_DEVICES={first!r})")
        return pynvml.nvmlDeviceGetHandleByIndex(int(first))
    except pynvml.NVMLError as exc:
        raise Skip(f"no GPU found through NVML: {exc}") from None


@contextlib.contextmanager
def sampling(handle: Any, into: dict[str, Any]) -> Iterator[None]:
    """GPU utilisation (NVML ``utilization.gpu``: the share of time a kernel ran) and VRAM used, every
    SAMPLE_S while the block runs, summed up into ``into``. NVML only: no CUDA context here."""
    import pynvml

    util: list[int] = []
    used: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            util.append(int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))
            used.append(int(pynvml.nvmlDeviceGetMemoryInfo(handle).used) >> 20)
            stop.wait(SAMPLE_S)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        u = sorted(util) or [0]
        into.update(samples=len(util), util_mean=round(sum(u) / len(u), 1), util_p50=u[len(u) // 2])
        into.update(util_p90=u[int(0.9 * (len(u) - 1))], vram_peak_mib=max(used, default=0))


def bench(model: str, size: tuple[float, int], *, cuda: bool, box_s: float, work: Path) -> dict[str, Any]:
    """``bench.accelerator --real`` on ``model``: its last stdout line, parsed."""
    minutes, episodes = size
    name = f"bench{len(list(work.glob('bench*.out')))}"
    cmd = [sys.executable, "-m", "bench.accelerator", "--real", "--speed", "300"]
    cmd += ["--minutes", f"{minutes:g}", "--episodes", str(episodes), "--asr-model", model]
    cmd += ["--out", str(work / f"{name}.json")]
    env = {**os.environ, "ASR_DEVICE": "cuda" if cuda else "cpu"}  # it builds its own Settings: auto
    lines = [line for line in run_child(cmd, box_s=box_s, work=work, name=name, env=env).splitlines() if line]
    if not lines:
        raise RuntimeError("bench.accelerator printed nothing")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@dataclass
class Recorder:
    """The transcriber as the ASR stage sees it, noting each call's batch size and outcome. With
    ``fits`` set, a batch above it fails with a simulated CUDA out-of-memory error, before the model."""

    inner: WhisperTranscriber
    fits: int | None
    save: Callable[[], None]
    attempts: list[dict[str, Any]] = field(default_factory=list)
    name: str = "recorder"

    def prepare_windows(self, path: Path) -> Iterator[PreparedAudio]:
        return self.inner.prepare_windows(path)

    def detect_language(self, item: PreparedAudio) -> tuple[str, float | None]:
        return self.inner.detect_language(item)

    def transcribe(self, path: Path) -> AsrResult:
        return self.inner.transcribe(path)

    def transcribe_prepared(
        self, items: list[PreparedAudio], *, batch_size: int | None = None, languages: Any = None
    ) -> list[AsrResult]:
        attempt: dict[str, Any] = {"batch": batch_size, "chunks": sum(len(p.chunks) for p in items)}
        self.attempts.append(attempt)
        self.save()
        t0 = time.monotonic()
        try:
            if self.fits is not None and (batch_size or 0) > self.fits:
                raise ModelError("simulated: CUDA out of memory", out_of_memory=True)
            results = self.inner.transcribe_prepared(items, batch_size=batch_size, languages=languages)
            attempt["outcome"] = "fit"
        except Exception as exc:
            oom = isinstance(exc, ModelError) and exc.out_of_memory
            attempt.update(outcome="out of memory" if oom else "error", error=one_line(exc))
            raise
        finally:
            attempt["seconds"] = round(time.monotonic() - t0, 2)
            self.save()
        return results


def hold_vram(leave: int) -> dict[str, int]:
    """Allocate all but ``leave`` bytes of the free memory of CUDA device 0 (as CUDA_VISIBLE_DEVICES
    numbers it, the card the model is on) through the driver API, for the life of this process."""
    import ctypes

    cuda = ctypes.CDLL("libcuda.so.1")

    def call(name: str, *args: Any) -> None:
        if (rc := getattr(cuda, name)(*args)) != 0:
            raise RuntimeError(f"{name} failed: CUresult {rc}")

    dev, ctx, ptr = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64()
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    call("cuInit", ctypes.c_uint(0))
    call("cuDeviceGet", ctypes.byref(dev), ctypes.c_int(0))
    call("cuDevicePrimaryCtxRetain", ctypes.byref(ctx), dev)  # the context CTranslate2's runtime uses
    call("cuCtxSetCurrent", ctx)
    call("cuMemGetInfo_v2", ctypes.byref(free), ctypes.byref(total))
    before, held = free.value, 0
    while (size := min(2**30, free.value - leave)) >= 2**20:  # 1 GiB blocks: no one huge allocation
        if cuda.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(size)) != 0:
            break
        held += size
        call("cuMemGetInfo_v2", ctypes.byref(free), ctypes.byref(total))
    return {"total_mib": total.value >> 20, "free_mib": before >> 20, "held_mib": held >> 20}


def oom_child(out: Path, *, device: str, start: int, fits: int | None) -> None:
    """Drive the ASR stage's ``_transcribe_fitting`` from batch ``start`` until a batch fits, on
    copies of real speech windows (``start`` chunks of them on a real card, whose memory is held but
    for OOM_LEAVE); ``out`` is rewritten as it goes, so a step stopped at its box shows what it tried."""
    import structlog.testing

    from ytingest.config import Settings
    from ytingest.items import AudioFile, DecodedAudio, VideoRef
    from ytingest.models.asr import WhisperTranscriber
    from ytingest.pipeline.context import RunContext
    from ytingest.stages.description import PIPELINE, metrics_for
    from ytingest.stages.transcribe import _transcribe_fitting
    from ytingest.testing import sample_episodes
    from ytingest.testing.fakes import MemoryStore
    from ytingest.testing.real_speech import real_speech_episodes

    mode = "simulated" if fits is not None else "real"
    data: dict[str, Any] = {"mode": mode, "device": device, "start": start, "simulated_fits": fits}
    save = functools.partial(write_json, out, data)
    asr = WhisperTranscriber("bundled", device=device, batching="cross", batch_size=start)
    paths = {e.id: e.path for e in [*real_speech_episodes(), *sample_episodes()]}
    windows = [asr.prepare(paths[clip]) for clip in OOM_CLIPS]
    per_copy = sum(len(w.chunks) for w in windows)
    copies = 1 if fits is not None else math.ceil(start / per_copy)  # the real card: a batch of `start`
    group = [
        DecodedAudio(AudioFile(VideoRef(f"{clip}-{k}", "local"), paths[clip], 0), w)
        for k in range(copies)
        for clip, w in zip(OOM_CLIPS, windows, strict=True)
    ]
    if device == "cuda":
        data["vram"] = hold_vram(OOM_LEAVE)
    recorder = Recorder(asr, fits, save)
    data.update(windows=len(group), chunks=per_copy * copies, attempts=recorder.attempts)
    home = out.parent / "home"
    settings = Settings(_env_file=None, ytingest_home=home, asr_batching="cross")  # type: ignore[call-arg]
    ctx = RunContext(settings, MemoryStore(), metrics_for(PIPELINE, settings))  # a ledger never written
    # as the ASR stage sets it from the model's own batch size (Settings caps ASR_BATCH_SIZE at 256)
    ctx.tuning.asr_batch_size = ctx.tuning.asr_batch_max = start
    with ThreadPoolExecutor(1) as pool, structlog.testing.capture_logs() as events:
        outcomes = asyncio.run(_transcribe_fitting(ctx, recorder, pool, list(group)))
    done = [o for o in outcomes if not isinstance(o, Exception)]  # each window transcribed
    tune = [{k: e.get(k) for k in ("before", "after", "reason")} for e in events if e["event"] == "tune"]
    data.update(tune=tune, sequence=[a["batch"] for a in recorder.attempts], windows_ok=len(done))
    data.update(final_batch=ctx.tuning.asr_batch_size, segments=sum(len(o.segments) for o in done))
    data["errors"] = sorted({one_line(o) for o in outcomes if isinstance(o, Exception)})
    data["text"] = " ".join(s.text for s in done[0].segments)[:200] if done else ""
    save()


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Whole or not at all: a child stopped at its time box leaves the last complete version."""
    path.with_suffix(".tmp").write_text(json.dumps(data, indent=1, default=str) + "\n")
    path.with_suffix(".tmp").replace(path)


def run_oom(into: dict[str, Any], *, cuda: bool, box_s: float, work: Path) -> None:
    """``oom_child`` in a child process (its held memory, and a card in a bad state, go with it);
    ``into`` gets what it wrote, also when it failed or was stopped at its box."""
    out = work / "oom.json"
    start, fits = (into["start"], None) if cuda else DRY_OOM
    cmd = [sys.executable, "-m", "bench.gpu", "--oom-child", str(out), "--oom-start", str(start)]
    cmd += ["--device", "cuda" if cuda else "cpu"] + (["--oom-fits", str(fits)] if fits else [])
    try:
        run_child(cmd, box_s=box_s, work=work, name="oom", env=dict(os.environ))
    finally:
        into.update(json.loads(out.read_text()) if out.exists() else {})
    outcomes = [a.get("outcome") for a in into.get("attempts", [])]
    if "out of memory" not in outcomes or outcomes[-1:] != ["fit"]:  # the halving, then a batch that fits
        raise RuntimeError(f"not out of memory then a fit: {outcomes[:5]} {into.get('errors', '')}")


def markdown(rep: Report) -> str:
    """The report as Markdown."""
    d, env, oom = rep.data, rep.data.get("environment", {}), rep.data.get("oom", {})
    models: dict[str, dict[str, Any]] = d.get("models", {})
    lines = [f"# GPU check ({'dry run on the CPU' if d['dry_run'] else 'real run'}), {d['started']}", ""]
    lines += [f"GPU path: **{d['gpu_path']}**. Budget {d['budget_s']:.0f} s, took {d.get('total_s')} s.", ""]
    lines += ["| step | status | s | note |", "|---|---|---|---|"]
    lines += [f"| {s.name} | {s.status} | {s.seconds} | {s.note} |" for s in rep.steps]
    lines += ["", "## Environment", "", *(f"- {k}: `{json.dumps(v)}`" for k, v in env.items())]
    lines += ["", "## bench.accelerator --real (device busy: time inside real model calls / wall)", ""]
    head = ["model", "device busy", "ceiling ratio", "audio-s/s", "x real time in model calls"]
    head += ["GPU util % mean/p50/p90", "peak VRAM MiB", "cores at 300x"]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for label, m in models.items():
        b, g = m.get("bench", {}), m.get("gpu", {})
        util = f"{g['util_mean']}/{g['util_p50']}/{g['util_p90']}" if g.get("samples") else "-"
        cores = b.get("cores_at_300x") or {}
        cores = round(sum(cores.values()), 2) if isinstance(cores, dict) else cores
        cells = [label, b.get("device_busy"), b.get("ceiling_ratio"), b.get("audio_s_per_s"), b.get("speed")]
        lines.append("| " + " | ".join(map(str, [*cells, util, g.get("vram_peak_mib", "-"), cores])) + " |")
    costs = {k: m["bench"] for k, m in models.items() if "bench" in m}
    if costs:
        lines += ["", "CPU seconds per audio hour (cores beside a device at 300x), by stage:", ""]
        lines += ["| stage | " + " | ".join(costs) + " |", "|---" * (len(costs) + 1) + "|"]
        for stage in dict.fromkeys(s for b in costs.values() for s in b.get("cpu_s_per_audio_hour") or {}):
            cells = [cost_cell(b, stage) for b in costs.values()]
            lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines += ["", f"## Out of memory ({oom.get('mode', 'not run')}): ASR_BATCH_SIZE halved till one fits", ""]
    if oom.get("attempts"):
        tried = " → ".join(f"{a['batch']} ({a.get('outcome', 'running')})" for a in oom["attempts"][:10])
        tried += f" … ({len(oom['attempts'])} calls)" if len(oom["attempts"]) > 10 else ""
        lines += [f"- {oom['windows']} windows, {oom['chunks']} speech chunks, on {oom['device']}"]
        lines += [f"- VRAM held back: {oom['vram']}" if "vram" in oom else "- no VRAM held back"]
        lines += [f"- batch sizes tried: {tried}", f"- tune events: {oom.get('tune')}"]
        lines += [f"- {oom.get('windows_ok')} windows transcribed, {oom.get('segments')} segments, errors "
                  f"{oom.get('errors')}; the first: \"{oom.get('text', '')}\""]  # fmt: skip
    return "\n".join(lines) + "\n"


def cost_cell(bench: dict[str, Any], stage: str) -> str:
    cpu, cores = bench.get("cpu_s_per_audio_hour") or {}, bench.get("cores_at_300x")
    return f"{cpu.get(stage, '-')} ({cores.get(stage, '-') if isinstance(cores, dict) else '-'})"


def check(args: argparse.Namespace) -> int:
    """Steps 0-4; 1 if any step failed (the report is written either way)."""
    rep, t0 = Report(dry_run=args.dry_run, budget_s=args.budget_s), time.monotonic()
    env: dict[str, Any] = {}
    with rep.step("0 environment"):
        env = rep.data["environment"] = environment(args.model)
    cuda = not args.dry_run and env.get("ctranslate2", {}).get("cuda", 0) > 0
    oom_box = BOXES["oom" if cuda else "oom dry"]
    gpu, no_gpu = None, ""
    try:
        gpu = visible_gpu()
    except Skip as exc:
        no_gpu = str(exc)
    models = rep.data["models"] = {}
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        for label, model in env.get("models", {BUNDLED: "bundled"}).items():
            kind = "dry" if args.dry_run else "tiny" if "tiny" in label.lower() else "large"
            box = min(BOXES[kind], rep.left() - oom_box - REPORT_RESERVE)
            m: dict[str, Any] = models.setdefault(label, {"gpu": {}})
            with rep.step(f"1 bench {label}"):
                if box < MIN_BOX:
                    raise Skip(f"{box:.0f} s of the budget left for it")
                with sampling(gpu, m["gpu"]) if gpu is not None else contextlib.nullcontext():
                    m["bench"] = bench(model, SIZES[kind], cuda=cuda, box_s=box, work=Path(tmp))
            with rep.step(f"2 nvml {label}"):
                if not m["gpu"].get("samples"):
                    raise Skip(no_gpu or "the bench did not run")
        rep.data["oom"] = {"mode": "real" if cuda else "simulated", "start": args.oom_batch}
        with rep.step("3 out of memory"):
            box = max(MIN_BOX, rep.left() - REPORT_RESERVE)  # at least oom_box: the benches left it
            run_oom(rep.data["oom"], cuda=cuda, box_s=box, work=Path(tmp))
    with rep.step("4 report"):
        rep.data["total_s"] = round(time.monotonic() - t0, 1)
        markdown(rep)  # a report that cannot be written fails here, not half way through the files
        args.out_dir.mkdir(parents=True, exist_ok=True)
    rep.data["steps"] = [asdict(s) for s in rep.steps]
    text = markdown(rep)
    write_json(args.out_dir / "gpu_check.json", rep.data)
    (args.out_dir / "gpu_check.md").write_text(text)
    print(text)
    return 1 if any(s.status == "error" for s in rep.steps) else 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n")[0])
    p.add_argument("--dry-run", action="store_true", help="the CPU path with tiny inputs (CI)")
    p.add_argument("--budget-s", type=float, default=450.0, help="all steps together (default 450)")
    p.add_argument("--model", action="append", default=[], help="a CTranslate2 Whisper dir (repeatable)")
    p.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--oom-batch", type=int, default=OOM_START, help="the OOM step's first batch")
    p.add_argument("--oom-child", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--oom-start", type=int, default=16, help=argparse.SUPPRESS)
    p.add_argument("--oom-fits", type=int, help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for d in args.model:
        if not (Path(d).expanduser() / "model.bin").is_file():
            p.error(f"--model {d}: no CTranslate2 model.bin there")
    if args.oom_child:
        oom_child(args.oom_child, device=args.device, start=args.oom_start, fits=args.oom_fits)
        return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
