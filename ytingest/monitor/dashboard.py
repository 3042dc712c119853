"""The live terminal view (rich), drawn from the same document ``/status`` serves."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

_COLOUR = {
    "none": "green",
    "download": "yellow",
    "source": "red",
    "decode": "bright_magenta",
    "asr": "magenta",
    "embed": "cyan",
    "store": "blue",
    "disk": "red",
}


def _bar(fraction: float, width: int = 16) -> ProgressBar:
    return ProgressBar(total=1.0, completed=max(0.0, min(1.0, fraction)), width=width)


def _eta(snap: dict[str, Any]) -> str:
    remaining = snap["queued"] - snap["done"] - snap["failed"]
    rate = (snap["done"] + snap["failed"]) / snap["t"] if snap["t"] > 0 else 0.0  # whole-run average
    if remaining <= 0:
        return "-"
    if rate <= 0:
        return "?"
    secs = int(remaining / rate)
    return f"{secs // 60}m{secs % 60:02d}s"


def render(status: dict[str, Any]) -> RenderableType:
    """One row per stage (queue bar, busy %, rate, latency), GPU/CPU, the verdict, totals."""
    snap = status.get("snapshot")
    if not snap:
        return Text(f"ytingest: {status.get('state', 'idle')}, no samples yet", style="dim")
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
            st.get("label") or name,
            f"{st['queue']}={st['depth']}",
            _bar(st["depth"] / cap),
            f"{st['busy']:.0%}",
            _bar(st["busy"]),
            str(st["workers"]),
            f"{st['items_per_s']:.2f}",
            f"{st['audio_s_per_s']:.1f}",
            f"{st['latency_s']:.2f}",
            str(st["done"]),
            str(st["errors"]),
        )
    lines: list[RenderableType] = [table]
    for gpu in snap["gpus"]:
        vram = gpu["vram_used"] / gpu["vram_total"] if gpu["vram_total"] else 0.0
        row = Table.grid(padding=(0, 1))
        row.add_row(
            f"GPU{gpu['index']} SM",
            _bar(gpu["sm"]),
            f"{gpu['sm']:.0%}",
            " VRAM",
            _bar(vram),
            f"{gpu['vram_used'] / 2**30:.1f}/{gpu['vram_total'] / 2**30:.1f} GiB",
        )
        lines.append(row)
    if not snap["gpus"]:
        row = Table.grid(padding=(0, 1))
        row.add_row(
            "CPU",
            _bar(snap["cpu_percent"] / 100),
            f"{snap['cpu_percent']:.0f}%",
            f" RSS {snap['rss_bytes'] / 2**20:.0f} MiB",
        )
        lines.append(row)
    verdict = snap.get("verdict") or {"stage": "none", "advice": ""}
    stage = verdict.get("stage", "none")
    lines.append(
        Text.assemble(
            ("bottleneck: ", "bold"),
            (stage, f"bold {_COLOUR.get(stage, 'white')}"),
            ("  " + verdict.get("advice", ""), ""),
        )
    )
    knobs = status.get("knobs", {})
    lines.append(
        Text(
            f"done {snap['done']}  failed {snap['failed']}  skipped {snap['skipped']}"
            f"  queued {snap['queued']}"
            f"  ETA {_eta(snap)}  {snap['download_bytes_per_s'] / 1024:.0f} KiB/s down"
            f"  audio on disk {snap['audio_dir_bytes'] / 2**20:.1f} MiB"
            f"  IO_WORKERS={knobs.get('io_workers', '?')}{' (autotune)' if knobs.get('autotune') else ''}",
            style="dim",
        )
    )
    return Group(*lines)
