"""The live terminal view (rich), drawn from the same document ``/status`` serves.

Every cell is a ``Text``, never a markup string: a title such as ``[link=…]`` or ``[/]`` is shown
as it is, and its control characters are escaped (``termtext``)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ytingest.monitor.sampler import eta_seconds
from ytingest.termtext import text

# the verdicts that are not a stage (a stage's colour is in the pipeline description, and in
# the snapshot's ``stages``)
_COLOUR = {
    "none": "green",
    "source": "red",
    "disk": "red",
    "budget": "bright_yellow",
    "stalled": "red",
}
_IDLE_SHOWN_S = 60.0  # a video this long without progress says so


def _bar(fraction: float, width: int = 16) -> ProgressBar:
    return ProgressBar(total=1.0, completed=max(0.0, min(1.0, fraction)), width=width)


def _clock(seconds: float) -> str:
    """``12:30``, or ``1:30:00`` from an hour on."""
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _span(seconds: float) -> str:
    """``12m05s``, or ``6h52m`` from an hour on."""
    s = int(seconds)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _eta(snap: dict[str, Any]) -> str:
    """``sampler.eta_seconds``: by audio once the model's rate is known, else by videos."""
    if "eta_s" in snap:
        secs = snap["eta_s"]
    else:  # a document from an engine that predates ``eta_s``
        rate = (snap["done"] + snap["failed"]) / snap["t"] if snap["t"] > 0 else 0.0
        secs = eta_seconds(0.0, None, snap["queued"] - snap["done"] - snap["failed"], rate)
    if secs is None:
        return "?"
    return _span(secs) if secs > 0 else "-"


def _in_model(videos: list[dict[str, Any]]) -> Table:
    """One line per video in the model stage: ``title  ━━━━╸   12:30 / 1:30:00  14%``."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(max_width=48, no_wrap=True, overflow="ellipsis")
    for _ in range(4):
        grid.add_column(justify="right")
    for v in videos:
        fraction, duration = v.get("fraction"), v.get("duration_s")
        idle = v.get("idle_s") or 0.0
        grid.add_row(
            text(v.get("title") or v["video_id"]),
            _bar(fraction or 0.0, width=24),
            Text(f"{_clock(v['done_s'])} / {_clock(duration) if duration else '?'}"),
            Text(f"{fraction:.0%}" if fraction is not None else "?"),
            Text(f"no progress for {_span(idle)}", style="yellow") if idle >= _IDLE_SHOWN_S else Text(),
        )
    return grid


def _audio(snap: dict[str, Any]) -> str:
    """`` (audio left 12:30:00, 7:00 waiting for the model at 41.0× real time)`` once there is
    audio to go by (the waiting audio is what the ``asr`` verdict reads)."""
    left, rate = snap.get("audio_left_s") or 0.0, snap.get("model_audio_s_per_s")
    if left <= 0:
        return ""
    waiting = snap.get("model_waiting_s") or 0.0
    ahead = f", {_clock(waiting)} waiting for the model" if waiting > 0 else ""
    return f" (audio left {_clock(left)}{ahead}" + (f" at {rate:.1f}× real time)" if rate else ")")


def render(status: dict[str, Any]) -> RenderableType:
    """One row per stage (queue bar, busy %, rate, latency), GPU/CPU, the videos in the model
    (progress bars), the verdict, totals."""
    snap = status.get("snapshot")
    if not snap:
        return text(f"ytingest: {status.get('state', 'idle')}, no samples yet", style="dim")
    table = Table(title="ytingest", title_justify="left", expand=False, show_edge=False)
    for col in (
        "stage",
        "queue",
        "",
        "busy",
        "",
        "workers",
        "items/s",
        "audio s/s",
        "s/item",
        "done",
        "errors",
    ):
        table.add_column(col, justify="left" if col in ("stage", "") else "right")
    for name, st in snap["stages"].items():
        cap = st["capacity"] or 1
        table.add_row(
            text(st.get("label") or name),
            text(f"{st['queue']}={st['depth']}"),
            _bar(st["depth"] / cap),
            Text(f"{st['busy']:.0%}"),
            _bar(st["busy"]),
            text(st["workers"]),
            Text(f"{st['items_per_s']:.2f}"),
            Text(f"{st['audio_s_per_s']:.1f}"),
            Text(f"{st['latency_s']:.2f}"),
            text(st["done"]),
            text(st["errors"]),
        )
    lines: list[RenderableType] = [table]
    for gpu in snap["gpus"]:
        vram = gpu["vram_used"] / gpu["vram_total"] if gpu["vram_total"] else 0.0
        row = Table.grid(padding=(0, 1))
        row.add_row(
            text(f"GPU{gpu['index']} SM"),
            _bar(gpu["sm"]),
            Text(f"{gpu['sm']:.0%}"),
            Text(" VRAM"),
            _bar(vram),
            Text(f"{gpu['vram_used'] / 2**30:.1f}/{gpu['vram_total'] / 2**30:.1f} GiB"),
        )
        lines.append(row)
    if not snap["gpus"]:
        row = Table.grid(padding=(0, 1))
        row.add_row(
            Text("CPU"),
            _bar(snap["cpu_percent"] / 100),
            Text(f"{snap['cpu_percent']:.0f}%"),
            Text(f" RSS {snap['rss_bytes'] / 2**20:.0f} MiB"),
        )
        lines.append(row)
    if snap.get("in_model"):
        lines.append(Text(f"in the model ({len(snap['in_model'])})", style="bold"))
        lines.append(_in_model(snap["in_model"]))
    verdict = snap.get("verdict") or {"stage": "none", "advice": ""}
    stage = verdict.get("stage", "none")
    colour = (snap["stages"].get(stage) or {}).get("term_colour") or _COLOUR.get(stage, "white")
    lines.append(
        Text.assemble(
            ("model: " if stage == "stalled" else "bottleneck: ", "bold"),
            text(stage, f"bold {colour}"),
            text("  " + verdict.get("advice", "")),
        )
    )
    knobs = status.get("knobs", {})
    lines.append(
        text(
            f"done {snap['done']}  failed {snap['failed']}  skipped {snap['skipped']}"
            f"  queued {snap['queued']}"
            f"  ETA {_eta(snap)}{_audio(snap)}  {snap['download_bytes_per_s'] / 1024:.0f} KiB/s down"
            f"  audio on disk {snap['audio_dir_bytes'] / 2**20:.1f} MiB"
            f"  IO_WORKERS={knobs.get('io_workers', '?')}{' (autotune)' if knobs.get('autotune') else ''}",
            style="dim",
        )
    )
    if budget := snap.get("budget"):
        lines.append(text(budget_line(budget), style="dim"))
    if cluster := status.get("cluster"):
        lines.append(text(cluster_line(cluster), style="dim"))
    return Group(*lines)


def budget_line(b: dict[str, Any]) -> str:
    """The run's request budget: its rate and source, its use in the last hour, the next turn."""
    line = (
        f"budget: {b['per_hour']:g}/h ({b.get('source', 'DOWNLOAD_RATE_GLOBAL')})"
        f"  {b['downloads_last_hour']} downloads + {b['listing_last_hour']} listing in the last hour"
    )
    line += (
        f"  next start in {b['next_start_in_s']:.0f} s" if b["next_start_in_s"] > 0 else "  next start now"
    )
    return line + (f"  {b['waiting']} waiting" if b.get("waiting") else "")


def cluster_line(c: dict[str, Any]) -> str:
    """A worker's view of its cluster: jobs, rate, global download slots against the cap, pause."""
    queue = c.get("queue", {})
    cap = c.get("download_cap") or "no cap"
    line = (
        f"cluster: {c.get('workers', '?')} workers  queue {queue.get('queued', 0)} waiting"
        f" {queue.get('picked', 0)} held  {c.get('videos_per_hour', 0)} videos/h"
        f"  downloads {c.get('downloads', 0)}/{cap} global"
    )
    if c.get("paused_s"):
        line += f"  paused {c['paused_s']:.0f} s ({c.get('pause_reason')})"
    return line
