"""What the monitor says about a stage that is the bottleneck: the ``Verdict``, and each stage's
advice, which its pipeline description names (``Stage.advice``, ``stages/description.py``).

An advice reads the stage (its busy fraction averaged over the diagnosis window), the evidence,
the run's knobs and the model's stage; it names the stage it is given, never a stage of its own
choosing. ``monitor/diagnose.py`` decides which stage is the bottleneck and calls its advice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

SATURATED = 0.85  # a stage busier than this is at its limit


@dataclass(frozen=True, slots=True)
class Knobs:
    """The run's settings an advice quotes (autotune keeps IO_WORKERS and BATCH_SIZE current)."""

    io_workers: int
    asr_workers: int
    batch_size: int
    db_workers: int
    io_max: int = 64
    decode_prefetch: int = 2  # ASR_QUEUE_SIZE: decoded files kept ahead of the model
    decode_workers: int = 1  # DECODE_WORKERS: processes for VAD + features


@dataclass(frozen=True, slots=True)
class Verdict:
    """The bottleneck named, with the evidence, the advice and the knob to turn (if any)."""

    stage: str  # a stage's name, or stalled | source | disk | budget | none
    evidence: dict[str, Any] = field(default_factory=dict)
    advice: str = ""
    knob: str | None = None
    current: int | None = None
    suggested: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"stage": self.stage, "evidence": self.evidence, "advice": self.advice}
        if self.knob:
            d.update(knob=self.knob, current=self.current, suggested=self.suggested)
        return d


class Judged(Protocol):
    """A stage as the diagnosis sees it (``monitor.sampler.StageSample``)."""

    @property
    def name(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def workers(self) -> int: ...
    @property
    def busy(self) -> float: ...  # fraction of worker-time busy, 0..1
    @property
    def knob(self) -> str | None: ...


# an advice: (the stage, its busy fraction averaged over the window), the evidence, the knobs,
# the model's stage (None: the pipeline has none) -> the verdict naming that stage
Advice = Callable[[Judged, dict[str, Any], Knobs, Judged | None], Verdict]


def advise_database(st: Judged, ev: dict[str, Any], knobs: Knobs, model: Judged | None) -> Verdict:
    """The store's: more DB_WORKERS (connections writing at once)."""
    n = knobs.db_workers
    return Verdict(
        st.name, ev, f"the database is the limit: raise DB_WORKERS {n}→{n * 2}", "DB_WORKERS", n, n * 2
    )


def advise_batches(st: Judged, ev: dict[str, Any], knobs: Knobs, model: Judged | None) -> Verdict:
    """The embedder's: bigger batches (autotune grows them on a GPU with VRAM to spare)."""
    b = knobs.batch_size
    where = "" if ev.get("gpu_sm") is None else " (or move embedding to the GPU)"
    advice = f"embedding is the limit: raise BATCH_SIZE {b}→{b * 2}{where}"
    return Verdict(st.name, ev, advice, "BATCH_SIZE", b, b * 2)


def advise_model(st: Judged, ev: dict[str, Any], knobs: Knobs, model: Judged | None) -> Verdict:
    """The ASR model's: another worker while the GPU has room, else a faster device or model."""
    n, gpu_sm = knobs.asr_workers, ev.get("gpu_sm")
    if gpu_sm is not None and gpu_sm < 0.7:
        advice = f"ASR is the limit and the GPU has room (SM {gpu_sm:.0%}): raise ASR_WORKERS {n}→{n + 1}"
        return Verdict(st.name, ev, advice, "ASR_WORKERS", n, n + 1)
    device = f"GPU (SM {gpu_sm:.0%})" if gpu_sm is not None else f"CPU ({ev.get('cpu', 0):.0%})"
    advice = (
        f"ASR is the limit and the {device} is busy: more ASR_WORKERS would not help; use a faster "
        f"device or a smaller ASR_MODEL; IO_WORKERS above {knobs.io_workers} only fills the disk"
    )
    return Verdict(st.name, ev, advice, None, n, None)


def advise_decoder(st: Judged, ev: dict[str, Any], knobs: Knobs, model: Judged | None) -> Verdict:
    """The decoder's: DECODE_WORKERS processes run VAD and features; more of them help while a CPU
    core is free, more downloads or ASR workers cannot. The prefetch (ASR_QUEUE_SIZE) only evens
    out bursts."""
    cpu, n = ev.get("cpu"), knobs.decode_workers
    model_busy = ev.get(f"{model.name}_busy", 0) if model is not None else 0
    busy_cpu = cpu is not None and cpu >= SATURATED
    cores = (
        f"the CPU is busy ({cpu:.0%}): it needs free cores (fewer ASR_CPU_THREADS, or more cores)"
        if busy_cpu
        else f"raise DECODE_WORKERS {n}→{n + 1} (a process on a free core each)"
    )
    advice = (
        f"decoding is the limit (decoder busy {st.busy:.0%}, ASR busy {model_busy:.0%}): {cores}; "
        f"more IO_WORKERS or ASR_WORKERS would not help; ASR_QUEUE_SIZE={knobs.decode_prefetch} "
        "(the decode prefetch) only evens out bursts"
    )
    if busy_cpu:
        return Verdict(st.name, ev, advice)
    return Verdict(st.name, ev, advice, "DECODE_WORKERS", n, n + 1)


def advise_speaker_id(st: Judged, ev: dict[str, Any], knobs: Knobs, model: Judged | None) -> Verdict:
    """Speaker ID's: it runs beside the model on host cores (its encoder on the GPU where torch has
    CUDA): another worker needs a free core; on a GPU box the encoder belongs on the GPU."""
    n = st.workers
    gpu = "" if ev.get("gpu_sm") is None else "; SPEAKER_DEVICE=cuda puts its encoder on the GPU"
    advice = (
        f"speaker ID is the limit (busy {st.busy:.0%}, {st.queue} backing up): raise SPEAKER_WORKERS "
        f"{n}→{n + 1} if a CPU core is free{gpu}; --no-speakers skips it"
    )
    return Verdict(st.name, ev, advice, "SPEAKER_WORKERS", n, n + 1)


def advise_generic(st: Judged, ev: dict[str, Any], knobs: Knobs, model: Judged | None) -> Verdict:
    """A stage without advice of its own: raise its knob, if it has one."""
    if st.knob is None:
        return Verdict(st.name, ev, f"{st.label} is the limit (busy {st.busy:.0%}, {st.queue} backing up)")
    n = st.workers
    advice = (
        f"{st.label} is the limit (busy {st.busy:.0%}, {st.queue} backing up): raise {st.knob} {n}→{n * 2}"
    )
    return Verdict(st.name, ev, advice, st.knob, n, n * 2)
