"""``--report run.html``: the run's timeline as a self-contained HTML page with inline SVG charts."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ytingest.monitor.sampler import Snapshot

_W, _H, _PAD = 900, 180, 40
# the series and verdicts that are not a stage (a stage's colour is in the pipeline description,
# and on its samples)
_COLOURS = {
    "source": "#cc0000",
    "disk": "#8b0000",
    "budget": "#b8860b",
    "stalled": "#ef2929",
    "audio": "#a347ba",  # the model's
    "eta": "#555753",
    "gpu": "#4e9a06",
    "cpu": "#4e9a06",
}


def _palette(history: Sequence[Snapshot]) -> dict[str, str]:
    """Colours by series' first word or verdict: each stage's own, then the others'."""
    return {**_COLOURS, **{n: st.colour for n, st in history[-1].stages.items() if st.colour}}


def _chart(
    title: str,
    history: Sequence[Snapshot],
    series: Mapping[str, Callable[[Snapshot], float]],
    top: float | None = None,
) -> str:
    colours = _palette(history)
    t_end = max(history[-1].t, 1e-6)
    peak = top or max([1.0] + [f(s) for f in series.values() for s in history])

    def xy(s: Snapshot, v: float) -> str:
        x = _PAD + (_W - 2 * _PAD) * s.t / t_end
        y = _H - _PAD / 2 - (_H - _PAD) * v / peak
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg width="{_W}" height="{_H}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{_PAD}" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>',
        f'<text x="4" y="{_PAD}" font-size="10">{peak:g}</text>',
        f'<text x="{_W - _PAD}" y="{_H - 4}" font-size="10">{t_end:.0f}s</text>',
    ]
    for stage, start, end in _verdict_spans(history):
        x0 = _PAD + (_W - 2 * _PAD) * start / t_end
        x1 = _PAD + (_W - 2 * _PAD) * end / t_end
        colour = colours.get(stage, "#888")
        parts.append(
            f'<rect x="{x0:.1f}" y="{_PAD / 2}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{_H - _PAD}" fill="{colour}" opacity="0.08"/>'
        )
    for i, (name, f) in enumerate(series.items()):
        colour = colours.get(name.split()[0], "#333")
        points = " ".join(xy(s, f(s)) for s in history)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
        parts.append(
            f'<text x="{_W - _PAD - 120}" y="{28 + 12 * i}" font-size="11" fill="{colour}">'
            f"{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _verdict_spans(history: Sequence[Snapshot]) -> list[tuple[str, float, float]]:
    """(stage, start, end) for each run of one verdict; a span ends where the next begins."""
    spans: list[list[Any]] = []
    for s in history:
        stage = s.verdict.get("stage", "none")
        if spans and spans[-1][0] == stage:
            spans[-1][2] = s.t
            continue
        if spans:
            spans[-1][2] = s.t
        spans.append([stage, s.t, s.t])
    return [(str(st), float(a), float(b)) for st, a, b in spans if st != "none"]


def _audio_chart(history: Sequence[Snapshot]) -> str:
    """Hours of audio left to transcribe and the ETA over time (nothing when no length was known)."""
    if not any(s.audio_left_s > 0 for s in history):
        return ""
    series = {
        "audio left (h)": lambda s: s.audio_left_s / 3600,
        "eta (h)": lambda s: (s.eta_s or 0.0) / 3600,
    }
    return _chart("audio left to transcribe and ETA (hours)", history, series)


def write_report(history: Sequence[Snapshot], path: Path, *, title: str = "ytingest run") -> None:
    """Queue depths, busy fractions, GPU/CPU use, bottleneck verdicts (shaded), over time."""
    if not history:
        path.write_text("<p>no samples were taken</p>\n", encoding="utf-8")
        return
    stages = list(history[-1].stages)
    queues = {
        f"{n} ({history[-1].stages[n].queue})": (lambda s, n=n: float(s.stages[n].depth)) for n in stages
    }
    busy = {f"{n} busy": (lambda s, n=n: s.stages[n].busy) for n in stages}
    if any(s.gpus for s in history):
        use = {"gpu SM": lambda s: max((g.sm for g in s.gpus), default=0.0)}
    else:
        use = {"cpu %": lambda s: s.cpu_percent / 100}
    verdicts = "".join(
        f"<li><b>{html.escape(stage)}</b> from {start:.0f}s to {end:.0f}s</li>"
        for stage, start, end in _verdict_spans(history)
    )
    last = history[-1]
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{last.done} stored, {last.failed} failed, {last.skipped} skipped in {last.t:.0f}s. "
        "Shaded: the stage named the bottleneck.</p>",
        _chart("queue depth (items)", history, queues),
        _chart("busy fraction", history, busy, top=1.0),
        _chart("accelerator use" if last.gpus else "CPU use", history, use, top=1.0),
        _audio_chart(history),
        f"<h2>bottleneck verdicts</h2><ul>{verdicts or '<li>none</li>'}</ul>",
    ]
    page = "<!doctype html><meta charset='utf-8'><title>ytingest report</title>" + "".join(body)
    path.write_text(page + "\n", encoding="utf-8")
