"""A simulated device: can the pipeline keep an accelerator busy? (Not: how fast is a device.)

    python -m bench.accelerator --speed 60 --minutes 30 --episodes 2
    python -m bench.accelerator --real          # a real GPU (bench/gpu.py): time inside real model calls

The real pipeline runs in this process (``Engine.stream``: yt-dlp children, the decoder process,
speakers, embeddings, embedded PostgreSQL, each pass in a fresh YTINGEST_HOME) on a local channel of
long real-speech episodes served unthrottled by ChannelServer. Pass 1 (not timed) runs the Whisper
model and records each model call; pass 2 (timed, models loaded first) replays each call's recorded
output after holding ONE simulated device, with no CPU (``time.sleep``), for the call's audio
seconds / SPEED. Only the ASR model is replaced: ``BatchedInferencePipeline.forward`` (keyed per
speech chunk: its features, offset, duration and the decoding options) and ``WhisperModel.transcribe``
(a chunk decoded again on its own: keyed by its audio and options). ``--real``: one pass, the hooks
only time the real calls.

Reported: device_busy (device held / wall of the timed pass), audio-s/s and ceiling_ratio ((audio-s/s)
/ SPEED: 1.0 when the device is the bottleneck), where the device sat idle (before the first call,
between calls, after the last), the wall inside wrapped calls by the thread they ran on ("speakers on
asr": speaker tagging on the model's thread), and a cost table: CPU seconds per audio hour of each
stage (thread or process CPU, not wall) and the cores each would need beside a device at 300x real
time. 300x is large-v3-turbo batched on an RTX 4090: a projection from published runs, not a
measurement. Stages: asr/speakers/embed/decode = threads named ytingest-<stage>*; speakers also
= the CPU inside a tagger's ``tag`` wherever it runs, less segmentation = the CPU inside
``Segmenter.segment`` (pyannote's segmentation-3.0 on onnxruntime, SPEAKER_DIARIZATION=segmentation;
onnxruntime's own pool is shared out like torch's); loop = the event loop and every other thread;
decode = decoder children (and multiprocessing workers); download = reaped children (yt-dlp, deno)
less decode; db = the run's PostgreSQL servers; model = CPU inside real model calls (``--real``).

Limits: the replay also removes the host side of ``forward`` (token splitting, word alignment); on
``--real`` on a CPU, CTranslate2's lazily started OpenMP workers are shared out with the torch pools.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from unittest import mock

import numpy as np
import psutil

from bench.long_form import RESULTS, _children_cpu, _postmasters
from ytingest.config import Settings
from ytingest.engine import Engine
from ytingest.eventloop import run
from ytingest.testing import ChannelServer, Episode, serve_in_thread
from ytingest.testing.long_episodes import default_cache_dir, long_channel

TARGET_X = 300.0  # large-v3-turbo batched on an RTX 4090 (published runs; a projection)
EVERY_S = 0.25
SAMPLE_RATE = 16_000
STAGES = ("download", "decode", "asr", "speakers", "segmentation", "embed", "loop", "db", "model")
NATIVE_USERS = ("asr", "speakers", "segmentation", "embed")  # models with native pools (torch, onnxruntime)
THREAD_STAGES = (
    ("ytingest-asr", "asr"),
    ("ytingest-speakers", "speakers"),
    ("ytingest-embed", "embed"),
    ("ytingest-decode", "decode"),
    ("bench-", "bench"),
    ("served-in-thread", "bench"),  # the channel server: YouTube's side, not ours
)
Mode = Literal["record", "replay", "real"]


# ---- pure helpers -------------------------------------------------------------------------------


def stage_of(thread_name: str | None) -> str:
    """The stage a thread of this process works for; None (no Python thread): a native pool."""
    if thread_name is None:
        return "native"
    return next((stage for prefix, stage in THREAD_STAGES if thread_name.startswith(prefix)), "loop")


def blob_key(array: np.ndarray, *parts: object) -> str:
    """A model input's identity: the bytes of ``array`` (features of a chunk, or samples) and ``parts``
    (where it lies in the audio, the decoding options)."""
    h = hashlib.blake2b(np.ascontiguousarray(array).data, digest_size=16)
    h.update(repr((array.dtype.str, array.shape, *parts)).encode())
    return h.hexdigest()


def split_native(cpu: float, weights: Mapping[str, float]) -> dict[str, float]:
    """``cpu`` of native threads shared among the stages in proportion to their positive weights."""
    used = {k: w for k, w in weights.items() if w > 0}
    total = sum(used.values())
    return {k: cpu * w / total for k, w in used.items()} if total > 0 else {}


def cost_table(cpu_s: Mapping[str, float], audio_s: float, target_x: float = TARGET_X) -> dict[str, Any]:
    """Per stage: CPU seconds, CPU seconds per audio hour, cores to keep a ``target_x`` device busy."""
    hours = audio_s / 3600
    rows = {}
    for stage, cpu in cpu_s.items():
        per_hour = cpu / hours if hours else 0.0
        rows[stage] = {
            "cpu_s": round(cpu, 2),
            "cpu_s_per_audio_hour": round(per_hour, 1),
            "cores_at_300x": round(per_hour * target_x / 3600, 2),
        }
    return rows


def idle_parts(spans: Sequence[tuple[float, float]], wall: float) -> dict[str, float]:
    """Where a device with these busy spans (s from the clock's start, in order) sat idle."""
    if not spans:
        return {"before_first_call_s": round(wall, 2), "between_calls_s": 0.0, "after_last_call_s": 0.0}
    busy = sum(b - a for a, b in spans)
    before, after = spans[0][0], max(0.0, wall - spans[-1][1])
    return {
        "before_first_call_s": round(before, 2),
        "between_calls_s": round(max(0.0, wall - busy - before - after), 2),
        "after_last_call_s": round(after, 2),
    }


# ---- CPU attribution ----------------------------------------------------------------------------


Cpu = defaultdict[str, float]


def _add(into: Cpu, more: Mapping[str, float]) -> None:
    for k, v in more.items():
        into[k] += v


class Ledger:
    """CPU of wrapped calls moved from the stage of the thread they run on to another stage (a
    speaker tagging call on an ASR thread is speakers' work; a replayed model call is the bench's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.moved: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.open: dict[int, tuple[str, str, float]] = {}  # native tid: (from, to, thread CPU at start)
        self.wall: defaultdict[str, float] = defaultdict(float)  # "speakers on asr": seconds inside calls

    @contextlib.contextmanager
    def moving(self, to: str) -> Iterator[None]:
        tid, src, t0 = (
            threading.get_native_id(),
            stage_of(threading.current_thread().name),
            time.perf_counter(),
        )
        if tid in self.open:  # inside an outer wrapped call: this part goes to ``to``, then back
            with self._lock:
                src, outer, c0 = self.open[tid]
                now = time.thread_time()
                self.moved[src, outer] += now - c0
                self.open[tid] = (src, to, now)
            try:
                yield
            finally:
                with self._lock:
                    _, _, c1 = self.open[tid]
                    now = time.thread_time()
                    self.moved[src, to] += now - c1
                    self.open[tid] = (src, outer, now)
                    self.wall[f"{to} on {src}"] += time.perf_counter() - t0
            return
        with self._lock:
            self.open[tid] = (src, to, time.thread_time())
        try:
            yield
        finally:
            with self._lock:
                _, _, c0 = self.open.pop(tid)
                self.moved[src, to] += time.thread_time() - c0
                self.wall[f"{to} on {src}"] += time.perf_counter() - t0

    def apply(self, totals: Cpu, thread_cpu: Mapping[int, float]) -> None:
        """Move the finished calls' CPU, and the part so far of those under way (``thread_cpu``)."""
        with self._lock:
            moves = list(self.moved.items())
            moves += [((s, t), max(0.0, thread_cpu.get(i, c0) - c0)) for i, (s, t, c0) in self.open.items()]
        for (src, to), cpu in moves:  # src == to: a no-op
            totals[src] -= cpu
            totals[to] += cpu


def _cpu(times: Any) -> float:
    return float(times.user + times.system)


def _db_cpu(home: Path) -> float:
    """CPU of the PostgreSQL servers under ``home``: theirs, their reaped backends', their live ones'."""
    total = 0.0
    for pid in _postmasters(home):
        with contextlib.suppress(psutil.Error):
            server = psutil.Process(pid)
            t = server.cpu_times()
            total += _cpu(t) + t.children_user + t.children_system
            for child in server.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += _cpu(child.cpu_times())
    return total


def native_threads() -> set[int]:
    """Threads of this process that Python did not start (native libraries' pools)."""
    python = {t.native_id for t in threading.enumerate()}
    return {t.id for t in psutil.Process().threads() if t.id not in python}


class Meter:
    """CPU by stage between ``start()`` and ``stop()``: this process's threads by name and its decoder
    children (sampled every EVERY_S, last value kept), yt-dlp (reaped children), PostgreSQL. Native
    threads (torch/OpenMP, CTranslate2 pools) are shared out, interval by interval, among the stages
    that ran models in that interval, in proportion to their own threads' CPU; those born while the
    ASR model loaded are the model's (``model``: real model calls' CPU)."""

    def __init__(self, ledger: Ledger, home: Path, model_threads: set[int]) -> None:
        self.ledger, self.home, self.model_threads = ledger, home, model_threads
        self._proc = psutil.Process()
        self._own = self._proc.cmdline()
        self._first: dict[int, float] = {}  # thread: CPU at start
        self._threads: dict[int, tuple[float, str]] = {}  # thread: (last CPU, stage)
        self._decoders: dict[int, tuple[float, float]] = {}  # pid: (CPU at start, last CPU)
        self._prev: Cpu = defaultdict(float)
        self._shared: Cpu = defaultdict(float)  # native threads' CPU, shared out
        self.native_cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-meter", daemon=True)

    def start(self) -> None:
        self.ledger.moved.clear()
        self.ledger.wall.clear()
        self._rusage, self._db = _children_cpu(), _db_cpu(self.home)
        self._sample(first=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(EVERY_S):
            self._sample()

    def _is_decoder(self, cmd: list[str]) -> bool:
        """The decoder process, a decode pool's worker (multiprocessing: spawned, or forked from us)."""
        joined = " ".join(cmd)
        return "ytingest.models.decoder" in joined or "multiprocessing" in joined or cmd == self._own

    def _sample(self, first: bool = False) -> None:
        names = {t.native_id: t.name for t in threading.enumerate()}
        for t in self._proc.threads():
            cpu = t.user_time + t.system_time
            self._first.setdefault(t.id, cpu if first else 0.0)
            self._threads[t.id] = (cpu, "model" if t.id in self.model_threads else stage_of(names.get(t.id)))
        for child in self._proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if self._is_decoder(child.cmdline()):
                    cpu = _cpu(child.cpu_times())
                    start = self._decoders.get(child.pid, (cpu if first else 0.0, 0.0))[0]
                    self._decoders[child.pid] = (start, cpu)
        totals: Cpu = defaultdict(float)
        for tid, (cpu, stage) in self._threads.items():
            totals[stage] += cpu - self._first[tid]
        self.ledger.apply(totals, {tid: cpu for tid, (cpu, _) in self._threads.items()})
        step = {k: totals[k] - self._prev[k] for k in totals}
        self._prev = totals
        native = step.get("native", 0.0)
        _add(self._shared, split_native(native, {k: step.get(k, 0.0) for k in NATIVE_USERS}) or {"?": native})

    def stop(self) -> dict[str, float]:
        """CPU seconds per stage since ``start()`` (call right after the timed work returns)."""
        self._stop.set()
        self._thread.join()
        self._sample()
        cpu: Cpu = defaultdict(float, {k: v for k, v in self._prev.items() if k != "native"})
        self.native_cpu = self._prev["native"]
        unclaimed = self._shared.pop("?", 0.0)  # native CPU in intervals where no model ran
        _add(cpu, self._shared)
        _add(cpu, split_native(unclaimed, {k: cpu.get(k, 0.0) for k in NATIVE_USERS}) or {"loop": unclaimed})
        cpu["decode"] += sum(b - a for a, b in self._decoders.values())
        # a zombie still exists: its CPU is not in RUSAGE_CHILDREN until it is reaped
        reaped = sum(b - a for pid, (a, b) in self._decoders.items() if not psutil.pid_exists(pid))
        cpu["download"] = _children_cpu() - self._rusage - reaped  # yt-dlp and its deno children
        cpu["db"] = _db_cpu(self.home) - self._db
        return {k: max(0.0, cpu[k]) for k in (*STAGES, "bench") if k in cpu}


# ---- the simulated device -----------------------------------------------------------------------


@dataclass
class Device:
    """One device: model calls take turns on it. ``record``/``real`` run the model (timed);
    ``replay`` returns recorded outputs after holding it for audio seconds / ``speed``."""

    ledger: Ledger
    mode: Mode = "record"
    speed: float = 60.0
    recorded: dict[str, Any] = field(default_factory=dict)
    spans: list[tuple[float, float]] = field(default_factory=list)  # perf_counter start, end
    audio_s: float = 0.0
    misses: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, mode: Mode) -> None:
        self.mode, self.spans, self.audio_s, self.misses = mode, [], 0.0, 0

    def call(self, audio_s: float, keys: Callable[[], list[str]], real: Callable[[], list[Any]]) -> list[Any]:
        """One model call: an output per key (replayed when all were recorded), else ``real()``'s."""
        with self.ledger.moving("model" if self.mode == "real" else "bench"):
            with self.lock:
                t0 = time.perf_counter()
                wanted = keys() if self.mode != "real" else []  # hashed on the device, in the call's time
                known = self.mode == "replay" and all(k in self.recorded for k in wanted)
                if known:
                    time.sleep(max(0.0, audio_s / self.speed - (time.perf_counter() - t0)))
                    out = [self.recorded[k] for k in wanted]
                else:
                    self.misses += sum(k not in self.recorded for k in wanted) if self.mode == "replay" else 0
                    out = real()
                self.spans.append((t0, time.perf_counter()))
                self.audio_s += audio_s
            if self.mode == "record":
                self.recorded.update(zip(wanted, copy.deepcopy(out), strict=True))
            return copy.deepcopy(out) if known else out

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """The hooks on faster-whisper's classes (any ytingest version calls them), and the speaker
        tagger's CPU moved to ``speakers`` wherever it runs."""
        from faster_whisper import WhisperModel
        from faster_whisper.transcribe import BatchedInferencePipeline

        forward, transcribe = BatchedInferencePipeline.forward, WhisperModel.transcribe

        def hooked_forward(pipe: Any, features: Any, tokenizer: Any, meta: Any, options: Any) -> Any:
            sig = f"{getattr(tokenizer, 'language_code', '')}|{getattr(tokenizer, 'task', '')}|{options!r}"
            return self.call(
                sum(float(m["duration"]) for m in meta),
                lambda: [
                    blob_key(features[i], round(m["offset"], 3), round(m["duration"], 3), sig)
                    for i, m in enumerate(meta)
                ],
                lambda: list(forward(pipe, features, tokenizer, meta, options)),
            )

        def hooked_transcribe(model: Any, audio: Any, *args: Any, **kw: Any) -> Any:
            if not isinstance(audio, np.ndarray):  # a path: not how ytingest calls it
                return transcribe(model, audio, *args, **kw)

            def real() -> list[Any]:
                segments, info = transcribe(model, audio, *args, **kw)
                return [(list(segments), info)]

            sig = repr((args, sorted(kw.items())))
            [(segments, info)] = self.call(len(audio) / SAMPLE_RATE, lambda: [blob_key(audio, sig)], real)
            return iter(segments), info

        with contextlib.ExitStack() as stack:
            stack.enter_context(mock.patch.object(BatchedInferencePipeline, "forward", hooked_forward))
            stack.enter_context(mock.patch.object(WhisperModel, "transcribe", hooked_transcribe))
            from ytingest.models.segmentation import Segmenter
            from ytingest.speakers.diarize import SegmentationTagger
            from ytingest.speakers.tagger import VoiceTagger

            for owner, method, stage in (
                (VoiceTagger, "tag", "speakers"),
                (SegmentationTagger, "tag", "speakers"),
                (Segmenter, "segment", "segmentation"),
            ):
                stack.enter_context(mock.patch.object(owner, method, self._moving(owner, method, stage)))
            yield

    def _moving(self, owner: type, method: str, stage: str) -> Callable[..., Any]:
        """``owner.method`` with its CPU moved to ``stage``."""
        real = getattr(owner, method)

        def hooked(obj: Any, *args: Any, **kw: Any) -> Any:
            with self.ledger.moving(stage):
                return real(obj, *args, **kw)

        return hooked


# ---- a pass -------------------------------------------------------------------------------------


def bench_settings(home: Path, asr_model: str, diarization: str = "segmentation") -> Settings:
    """Settings built here, not from the environment: steady (no autotune or dashboard) and, where
    the field exists, ASR and embedding not taking turns (on a device they share no cores)."""
    wanted: dict[str, Any] = {"model_turns": "off", "dashboard": False, "autotune": False}
    extra = {k: v for k, v in wanted.items() if k in Settings.model_fields}
    fixed: dict[str, Any] = {
        "ytingest_home": home,
        "database_url": None,
        "metrics_port": None,
        "asr_model": asr_model,
        "speaker_diarization": diarization,
    }
    return Settings(_env_file=None, **fixed, **extra)  # type: ignore[call-arg]


async def one_pass(device: Device, settings: Settings, url: str, *, timed: bool) -> dict[str, Any]:
    """``Engine.stream(url)`` with the models loaded first; clock and meters around that call."""
    before = native_threads()
    async with Engine(settings) as engine:
        await engine.transcriber()
        model_threads = native_threads() - before  # CTranslate2's pool (torch starts its own lazily)
        await engine.embedder()
        await engine.speaker_tagger()
        meter = Meter(device.ledger, settings.ytingest_home, model_threads)
        if timed:
            meter.start()
        t0 = time.perf_counter()
        summary = await engine.stream(url)
        wall = time.perf_counter() - t0
        cpu = meter.stop() if timed else {}
    busy = sum(b - a for a, b in device.spans)
    return {
        "wall_s": wall,
        "summary": summary.to_dict(),
        "cpu": cpu,
        "native_cpu_s": round(meter.native_cpu, 2),
        "busy_s": busy,
        "idle": idle_parts([(a - t0, b - t0) for a, b in device.spans], wall),
        "model_calls": len(device.spans),
        "model_audio_s": device.audio_s,
    }


def tree_commit() -> str:
    """``git rev-parse --short HEAD`` of the working directory, +dirty when ytingest/ has changes."""
    git = ["git", "-C", str(Path.cwd())]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "ytingest"], capture_output=True, text=True)
    return (head.stdout.strip() or "unknown") + ("+dirty" if dirty.stdout.strip() else "")


def main(args: argparse.Namespace) -> dict[str, Any]:
    import ytingest

    for name in list(os.environ):  # nothing of the user's configuration leaks into the run
        if name.lower() in Settings.model_fields:
            del os.environ[name]
    episodes: list[Episode] = long_channel([args.minutes] * args.episodes, args.cache, fmt=args.fmt)
    ledger = Ledger()
    device = Device(ledger, speed=args.speed)
    load0, recorded = os.getloadavg(), {"wall_s": None}
    with device.installed(), serve_in_thread(ChannelServer(episodes)) as channel:
        with tempfile.TemporaryDirectory(prefix="bench-accel-") as tmp:
            if not args.real:
                device.reset("record")
                settings = bench_settings(Path(tmp) / "record", args.asr_model, args.diarization)
                recorded = run(one_pass(device, settings, channel.feed_url, timed=False))
                print(f"  pass 1 (real model, recorded): {recorded['wall_s']:.1f} s", file=sys.stderr)
            device.reset("real" if args.real else "replay")
            settings = bench_settings(Path(tmp) / "timed", args.asr_model, args.diarization)
            timed = run(one_pass(device, settings, channel.feed_url, timed=True))
    s, wall = timed["summary"], timed["wall_s"]
    audio = float(s["audio_seconds"])
    speed = device.audio_s / timed["busy_s"] if args.real and timed["busy_s"] else args.speed
    table = cost_table(timed["cpu"], audio)
    return {
        "label": args.label,
        "speaker_diarization": args.diarization,
        "real": bool(args.real),
        "speed": round(speed, 2),
        "device_busy": round(timed["busy_s"] / wall, 3),
        "audio_s": round(audio, 1),
        "wall_s": round(wall, 2),
        "audio_s_per_s": round(audio / wall, 2),
        "ceiling_ratio": round(audio / wall / speed, 3),
        "cpu_s_per_audio_hour": {k: v["cpu_s_per_audio_hour"] for k, v in table.items() if k != "bench"},
        "cores_at_300x": {k: v["cores_at_300x"] for k, v in table.items() if k != "bench"},
        "cost_table": table,
        "device_idle": timed["idle"],
        "replay_misses": device.misses,
        "record_pass_wall_s": recorded["wall_s"] and round(recorded["wall_s"], 1),  # pass 1: the real model
        "model_calls": timed["model_calls"],
        "model_audio_s": round(timed["model_audio_s"], 1),
        "native_thread_cpu_s": timed["native_cpu_s"],  # torch/CTranslate2 pools, shared out above
        "wall_in_calls_s": {k: round(v, 1) for k, v in ledger.wall.items()},  # "speakers on asr": tagging
        "done": s["done"],
        "failed": s["failed"],
        "episodes": [{"id": e.id, "minutes": round(e.duration / 60, 2)} for e in episodes],
        "commit": tree_commit(),
        "ytingest": str(Path(ytingest.__file__).parent),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "load_average_at_start": [round(x, 2) for x in load0],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def report(r: dict[str, Any]) -> None:
    kind = "real device (time inside model calls)" if r["real"] else "a simulated device"
    print(f"{kind} at {r['speed']}x, {r['label'] or 'unlabelled'}, {r['commit']} ({r['ytingest']})")
    print(f"  {r['audio_s']:.0f} audio-s in {r['wall_s']:.1f} s: {r['audio_s_per_s']} audio-s/s")
    print(f"  device busy {r['device_busy']:.3f}, ceiling ratio {r['ceiling_ratio']:.3f}")
    print(f"  device idle: {r['device_idle']}")
    print(f"  wall inside wrapped calls (by the thread's stage): {r['wall_in_calls_s']}")
    print(f"  {r['model_calls']} model calls, {r['replay_misses']} replay misses, done {r['done']}")
    print(f"  load average {r['load_average_at_start']} -> {r['load_average_at_end']}")
    print(f"  {'stage':10s} {'CPU s':>8s} {'CPU-s/audio-h':>14s} {'cores at 300x':>14s}")
    for stage, x in r["cost_table"].items():
        print(f"  {stage:10s} {x['cpu_s']:8.1f} {x['cpu_s_per_audio_hour']:14.1f} {x['cores_at_300x']:14.2f}")
    total = sum(v for k, v in r["cpu_s_per_audio_hour"].items())
    print(f"  {'total':10s} {'':8s} {total:14.1f} {total * TARGET_X / 3600:14.2f}")


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.accelerator", description=__doc__.split("\n")[0])
    parser.add_argument("--speed", type=float, default=60.0, help="the simulated device's x real time")
    parser.add_argument("--minutes", type=float, default=30.0, help="length of each episode")
    parser.add_argument("--episodes", type=int, default=2, help="episodes in the channel")
    parser.add_argument("--real", action="store_true", help="no replay: time the real model calls")
    parser.add_argument("--asr-model", default="bundled")
    parser.add_argument("--cache", type=Path, default=default_cache_dir(), help="where episodes are kept")
    parser.add_argument("--out", type=Path, default=RESULTS / "accelerator.json")
    parser.add_argument("--fmt", choices=("m4a", "webm"), default="m4a")
    parser.add_argument("--label", default="")
    parser.add_argument("--diarization", choices=("segmentation", "windows"), default="segmentation")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("ytingest").setLevel(logging.WARNING)
    result = main(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)
    print(json.dumps({k: v for k, v in result.items() if k != "cost_table"}))


if __name__ == "__main__":
    cli()
