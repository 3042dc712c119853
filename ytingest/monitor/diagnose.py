"""Name the bottleneck from measured metrics, with evidence and advice that names a knob.

Pure functions over recent ``Snapshot``s, so every rule is testable without a pipeline. The
stages are whatever the snapshot holds, in pipeline order: each is judged on the queue that
feeds it; the model's stage also on the audio waiting for it (``model_backed_up``). A stage's
advice is the one its pipeline description names (``pipeline/advice.py``, carried on its
sample); a stage without one gets the generic advice for its knob. A model that has stopped
making progress comes before all of them (``stalled``). Downloads waiting for the request
budget's turn (``pipeline.budget``) name the ``budget``, not more IO_WORKERS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ytingest.monitor.sampler import Snapshot, StageSample
from ytingest.pipeline.advice import SATURATED, advise_generic
from ytingest.pipeline.advice import Knobs as Knobs  # re-exported: the monitor's callers use it
from ytingest.pipeline.advice import Verdict as Verdict  # re-exported, as Knobs
from ytingest.pipeline.budget import BudgetSample
from ytingest.pipeline.tuning import budget_io_cap

STARVED = 0.6  # a stage less busy than this is waiting for work
BACKED_UP = 0.5  # an input queue fuller than this is piling up
MEASURED = 0.05  # a stage busier than this has a rate worth reading
WAITING_S = 1.0  # audio-seconds waiting for the model that count as a backlog
STALL_S = 900.0  # MODEL_STALL_S's default


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def evidence_of(window: Sequence[Snapshot]) -> dict[str, Any]:
    """Averages over the window: every stage's queue depth and busy fraction, GPU use, rate limits."""
    last = window[-1]
    ev: dict[str, Any] = {}
    for name, s in last.stages.items():
        ev[s.queue] = round(_mean([w.stages[name].depth for w in window]), 1)
    for name in last.stages:
        ev[f"{name}_busy"] = round(_mean([w.stages[name].busy for w in window]), 2)
    if last.gpus:
        ev["gpu_sm"] = round(_mean([max(g.sm for g in w.gpus) for w in window if w.gpus]), 2)
        ev["vram"] = round(max(g.vram_used / g.vram_total for g in last.gpus if g.vram_total), 2)
    else:
        ev["cpu"] = round(_mean([w.cpu_percent for w in window]) / 100, 2)
    ev["rate_limited"] = sum(w.rate_limited for w in window)
    if any(s.model for s in last.stages.values()):
        ev["model_waiting_s"] = round(_mean([w.model_waiting_s for w in window]), 1)
    return ev


def _fill(window: Sequence[Snapshot], stage: str) -> float:
    cap = window[-1].stages[stage].capacity
    return _mean([w.stages[stage].depth for w in window]) / cap if cap else 0.0


def model_backed_up(window: Sequence[Snapshot]) -> bool:
    """Audio waits for the model: decoded windows, or the rest of a video being decoded or
    downloaded (``Snapshot.model_waiting_s``), on average over the window. The model's queue
    counts speech chunks and one video's windows never fill it, so its depth alone would call a
    model busy on one long video "not backed up" until that video is done."""
    return _mean([w.model_waiting_s for w in window]) >= WAITING_S


def backed_up(window: Sequence[Snapshot], stage: str) -> bool:
    """The queue before ``stage`` is piling up (the model's stage: audio is waiting for it)."""
    if window[-1].stages[stage].model and model_backed_up(window):
        return True
    return _fill(window, stage) >= BACKED_UP


def capacity(window: Sequence[Snapshot], stage: str) -> float | None:
    """Videos per second ``stage`` could take if it were never starved: its rate over its busy
    fraction (None while it has done too little to tell)."""
    busy = _mean([w.stages[stage].busy for w in window])
    rate = _mean([w.stages[stage].items_per_s for w in window])
    return rate / busy if busy > MEASURED and rate > 0 else None


def downloads_needed(window: Sequence[Snapshot], knobs: Knobs) -> int:
    """Little's law: downloads in flight = what the slowest later stage can take (videos/s)
    × mean download time, +25%; at least one more than now, at most IO_WORKERS_MAX, and never
    more than the request budget keeps busy (``budget_cap``)."""
    names = list(window[-1].stages)
    download_time = window[-1].stages[names[0]].latency_s
    rates = [c for n in names[1:] if (c := capacity(window, n)) is not None]
    if not rates or download_time <= 0:
        wanted = min(knobs.io_max, knobs.io_workers * 2)
    else:
        wanted = max(knobs.io_workers + 1, min(knobs.io_max, math.ceil(1.25 * min(rates) * download_time)))
    cap = budget_cap(window)
    return wanted if cap is None else min(wanted, cap)


def budget_cap(window: Sequence[Snapshot]) -> int | None:
    """The downloads the run's request budget keeps busy (``tuning.budget_io_cap``: its rate × the
    mean download time, + 1); None without a budget or before a download time is measured."""
    last = window[-1]
    if last.budget is None or not last.stages:
        return None
    return budget_io_cap(last.budget.per_hour, next(iter(last.stages.values())).latency_s)


def budget_bound(window: Sequence[Snapshot]) -> bool:
    """Downloads (or a listing) waited for their turn in the budget in most of the window."""
    return sum(w.budget is not None and w.budget.waiting > 0 for w in window) * 2 > len(window)


def budget_verdict(b: BudgetSample, ev: dict[str, Any], cap: int | None) -> Verdict:
    """The request budget paces downloads: name it; more IO_WORKERS would only wait for a turn."""
    ev = {**ev, "budget_per_hour": b.per_hour, "budget_waiting": b.waiting, "budget_cap": cap}
    why = "" if b.source == "DOWNLOAD_RATE_GLOBAL" else f", unset: {b.source}"
    enough = f"{cap} are enough by Little's law" if cap is not None else "they would wait for a turn"
    advice = (
        f"download budget: {b.per_hour:g}/h (DOWNLOAD_RATE_GLOBAL{why}) is the limit, one start every "
        f"{3600 / b.per_hour:.1f} s, {b.waiting} waiting: more IO_WORKERS would not help ({enough}); "
        "raise DOWNLOAD_RATE_GLOBAL only as far as the address or account allows (cookies allow more)"
    )
    return Verdict("budget", ev, advice, "DOWNLOAD_RATE_GLOBAL", round(b.per_hour), None)


def _averaged(window: Sequence[Snapshot], name: str) -> StageSample:
    return replace(window[-1].stages[name], busy=_mean([w.stages[name].busy for w in window]))


def is_stalled(snap: Snapshot, stall_s: float = STALL_S) -> bool:
    """Videos are in the model stage and none of them has advanced, nor has the stage finished
    anything, for ``stall_s`` or more."""
    return bool(snap.in_model) and snap.model_quiet_s >= stall_s


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def stall_verdict(snap: Snapshot, ev: dict[str, Any]) -> Verdict:
    """The model is hung: what to look at, and that a restart loses nothing stored."""
    model = next((s for s in snap.stages.values() if s.model), None)
    who = f"the model ({model.label})" if model is not None else "the model"
    ev = {**ev, "model_quiet_s": snap.model_quiet_s, "in_model": [v.video_id for v in snap.in_model]}
    advice = (
        f"{who} made no progress for {_minutes(snap.model_quiet_s)} on {len(snap.in_model)} video(s): "
        "a hung GPU driver, a stuck decode or a model call that never returns; look at nvidia-smi, "
        "the decoder process and the last log events of those videos, or restart the run (nothing "
        "stored is lost: stored videos are skipped, the ones in flight start over)"
    )
    return Verdict("stalled", ev, advice)


def source_advice(pushed_back: int, io_workers: int) -> str:
    """The site is pushing back: HTTP 429, or YouTube's bot check ("Sign in to confirm you're not
    a bot") or "This content isn't available, try again later", all counted as ``rate_limited``.
    Each says the account or IP is past its request budget, so the fixes are the same."""
    return (
        f"the site is pushing back ({pushed_back} × 429 / bot check / try again later): pass cookies "
        "(--cookies FILE or --cookies-from-browser BROWSER), slow down "
        f"(--ytdlp-arg=--sleep-requests --ytdlp-arg=1) or lower IO_WORKERS {io_workers}→"
        f"{max(1, io_workers // 2)}; raising it makes this worse"
    )


def diagnose(window: Sequence[Snapshot], knobs: Knobs, *, stall_s: float = STALL_S) -> Verdict:
    """The current bottleneck over ``window`` (oldest first, at least one snapshot).

    A model stalled for ``stall_s`` (``is_stalled``) is named before any stage.

    Downstream stages are judged first: a backlog upstream of a slow stage is its effect.
    A stage is the bottleneck when it is busy and the queue that feeds it is backing up; the
    first stage (downloads) when every slot is busy while everything after it is starved.
    """
    ev = evidence_of(window)
    last = window[-1]
    names = list(last.stages)
    busy = {name: ev[f"{name}_busy"] for name in names}
    if is_stalled(last, stall_s):
        return stall_verdict(last, ev)
    if ev["rate_limited"]:
        advice = source_advice(ev["rate_limited"], knobs.io_workers)
        return Verdict("source", ev, advice, "IO_WORKERS", knobs.io_workers, max(1, knobs.io_workers // 2))
    if sum(w.disk_blocked for w in window) * 2 > len(window):
        advice = "downloads wait for disk room: raise MAX_AUDIO_BYTES or free space (MIN_FREE_BYTES); "
        return Verdict("disk", ev, advice + "more IO_WORKERS would not help")
    model = next((n for n in names if last.stages[n].model), None)
    for name in reversed(names[1:]):
        if busy[name] >= SATURATED and backed_up(window, name):
            st = _averaged(window, name)
            averaged_model = _averaged(window, model) if model is not None else None
            return (st.advice or advise_generic)(st, ev, knobs, averaged_model)
    if len(names) < 2:
        return Verdict("none", ev, "no stage is saturated")
    first, consumer = names[0], names[1]
    starved = max(busy[n] for n in names[1:]) < STARVED and _fill(window, consumer) < 0.25
    waiting = last.stages[first].depth > 0 or not last.discovery_done
    if last.budget is not None and starved and budget_bound(window):
        return budget_verdict(last.budget, ev, budget_cap(window))
    if busy[first] >= SATURATED and starved and waiting:
        n, m = knobs.io_workers, downloads_needed(window, knobs)
        if last.budget is not None and m <= n:  # as many as the budget keeps busy: it is the limit
            return budget_verdict(last.budget, ev, m)
        starved_one = model or consumer
        who = "ASR" if starved_one == model else last.stages[starved_one].label
        advice = (
            f"downloads starve {who} ({who} busy {busy[starved_one]:.0%}): raise IO_WORKERS {n}→{m}; "
            "more ASR_WORKERS would not help"
        )
        return Verdict(first, ev, advice, "IO_WORKERS", n, m)
    return Verdict(
        "none", ev, "no stage is saturated" if any(b > MEASURED for b in busy.values()) else "idle"
    )
