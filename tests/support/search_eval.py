"""Search quality: (query → expected segment) pairs, recall@1 and recall@5 per search mode and kind.

The pairs live in ``samples/search_queries.json``: half ``keyword`` (names, numbers, rare terms
said in the audio), half ``paraphrase`` (the same meaning in other words). A hit counts when its
video is the expected one and its text contains one of the ``expect`` substrings (case and
whitespace aside), so the pairs hold however the ASR happens to cut the audio into segments.

The corpus is every bundled recording: the six sample episodes, the two dialogues and the real
speech clips, ingested for real (yt-dlp, faster-whisper, MiniLM, PostgreSQL). ``bench.search_quality``
prints the table; ``tests/integration/test_search_quality.py`` asserts on it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ytingest.config import Settings
from ytingest.engine import Engine
from ytingest.items import RunSummary
from ytingest.testing.channel import SAMPLES, ChannelServer, Episode, sample_episodes
from ytingest.testing.dialogues import dialogue_episodes
from ytingest.testing.real_speech import real_speech_episodes

QUERIES = SAMPLES / "search_queries.json"
MODES = ("semantic", "keyword", "hybrid")
KINDS = ("keyword", "paraphrase")
LIMIT = 5
DEEP = 50  # how deep each single mode is read before fusing (hybrid fuses the top 50 of each)


@dataclass(frozen=True, slots=True)
class Case:
    """One pair: what a user types, and the segment (video + text substring) it should find."""

    query: str
    kind: str
    video_id: str
    expect: tuple[str, ...]

    def found_by(self, video_id: str, text: str) -> bool:
        """Whether a hit with this video and text is the expected segment."""
        if video_id != self.video_id:
            return False
        hay = _norm(text)
        return any(_norm(e) in hay for e in self.expect)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def load_cases(path: Path = QUERIES) -> list[Case]:
    """The pairs in ``path`` (``expect`` is a substring or a list of alternatives)."""
    out = []
    for q in json.loads(path.read_text())["queries"]:
        expect = q["expect"]
        alternatives = (expect,) if isinstance(expect, str) else tuple(expect)
        if q["kind"] not in KINDS or not alternatives:
            raise ValueError(f"bad search-quality pair: {q!r}")
        out.append(Case(q["query"], q["kind"], q["video_id"], alternatives))
    return out


def corpus_episodes() -> list[Episode]:
    """Everything bundled that has speech: sample episodes, dialogues, real recordings."""
    return [*sample_episodes(), *dialogue_episodes(), *real_speech_episodes()]


class Searcher(Protocol):
    """What the evaluation needs of an ``Engine``."""

    async def search(self, query: str, *, limit: int = ..., mode: str = ...) -> Sequence[Any]: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """One pair in one mode: the 1-based rank of the first correct hit in the top ``LIMIT`` (None:
    not there), its rank in the mode's top ``DEEP`` (single modes only, to see why fusion moved it),
    and the top ``LIMIT`` hits as (video_id, idx, text)."""

    case: Case
    mode: str
    rank: int | None
    deep_rank: int | None
    top: tuple[tuple[str, int, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "deep_rank": self.deep_rank, "top": [list(t) for t in self.top]}


@dataclass
class Evaluation:
    """Every pair's outcome in every mode, and the recall figures derived from them."""

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def cases(self) -> list[Case]:
        seen: dict[tuple[str, str], Case] = {}
        for o in self.outcomes:
            seen.setdefault((o.case.query, o.case.video_id), o.case)
        return list(seen.values())

    def of(self, mode: str, kind: str | None = None) -> list[Outcome]:
        return [o for o in self.outcomes if o.mode == mode and (kind is None or o.case.kind == kind)]

    def hits_at(self, mode: str, kind: str | None, k: int) -> tuple[int, int]:
        """(pairs whose expected segment is in the top ``k``, pairs) for ``mode`` on ``kind``."""
        rows = self.of(mode, kind)
        return sum(1 for o in rows if o.rank is not None and o.rank <= k), len(rows)

    def recall(self, mode: str, kind: str | None, k: int) -> float:
        found, total = self.hits_at(mode, kind, k)
        return found / total if total else 0.0

    def shortfalls(self) -> list[str]:
        """Where hybrid is worse than the better single mode on a kind, one line each (empty: none)."""
        out = []
        for kind in KINDS:
            for k in (1, LIMIT):
                best = max(self.recall("semantic", kind, k), self.recall("keyword", kind, k))
                got = self.recall("hybrid", kind, k)
                if got < best:
                    out.append(f"{kind} recall@{k}: hybrid {got:.2f} < best single mode {best:.2f}")
        return out

    def lost(self) -> list[Case]:
        """Pairs that hybrid ranks worse than a single mode does."""

        def rank(case: Case, mode: str) -> int:
            ranks = (o.rank for o in self.outcomes if o.case == case and o.mode == mode)
            return next(ranks, None) or LIMIT + 1

        return [c for c in self.cases if min(rank(c, "semantic"), rank(c, "keyword")) < rank(c, "hybrid")]

    def describe(self, case: Case) -> str:
        """One line: the pair and each mode's rank ('-': not in the top ``LIMIT``; single modes
        also show the rank in their top ``DEEP``, the list hybrid fuses)."""
        parts = []
        for o in self.outcomes:
            if o.case == case:
                part = f"{o.mode} {o.rank or '-'}"
                if o.mode != "hybrid":
                    part += f" (top-{DEEP}: {o.deep_rank or '-'})"
                parts.append(part)
        return f"[{case.kind}] {case.query!r} → {case.video_id}: {', '.join(parts)}"

    def losses(self) -> list[str]:
        """``describe`` of every pair that hybrid ranks worse than a single mode does."""
        return [self.describe(c) for c in self.lost()]

    def explain(self, case: Case) -> list[str]:
        """Each mode's top ``LIMIT`` for one pair, as ``video:idx`` with the correct hit starred."""
        out = []
        for o in self.outcomes:
            if o.case == case:
                tops = [f"{v}:{i}{'*' if o.case.found_by(v, t) else ''}" for v, i, t in o.top]
                out.append(f"{o.mode:>8}: {' '.join(tops) or '(nothing)'}")
        return out

    def table(self) -> str:
        """The markdown table: recall@1 / recall@5 per mode, per kind and overall."""
        kinds: list[str | None] = [*KINDS, None]
        head = ["mode"] + [
            f"{kind or 'all'} ({len([c for c in self.cases if kind is None or c.kind == kind])}) R@{k}"
            for kind in kinds
            for k in (1, LIMIT)
        ]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for mode in MODES:
            cells = [mode]
            for kind in kinds:
                for k in (1, LIMIT):
                    found, total = self.hits_at(mode, kind, k)
                    cells.append(f"{found / total if total else 0:.2f} ({found}/{total})")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "limit": LIMIT,
            "recall": {
                mode: {
                    kind or "all": {f"at{k}": round(self.recall(mode, kind, k), 4) for k in (1, LIMIT)}
                    for kind in (*KINDS, None)
                }
                for mode in MODES
            },
            "pairs": [
                {
                    "query": c.query,
                    "kind": c.kind,
                    "video_id": c.video_id,
                    "expect": list(c.expect),
                    **{o.mode: o.to_dict() for o in self.outcomes if o.case == c},
                }
                for c in self.cases
            ],
            "hybrid_shortfalls": self.shortfalls(),
            "hybrid_losses": self.losses(),
        }


async def evaluate(searcher: Searcher, cases: Iterable[Case], modes: Sequence[str] = MODES) -> Evaluation:
    """Run every pair in every mode (top ``LIMIT``) and record where the expected segment ranked."""
    result = Evaluation()
    for case in cases:
        for mode in modes:
            hits = await searcher.search(case.query, limit=LIMIT, mode=mode)
            deep = None
            if mode != "hybrid":
                deep = _rank(case, await searcher.search(case.query, limit=DEEP, mode=mode))
            top = tuple((h.video_id, getattr(h, "idx", -1), h.text) for h in hits)
            result.outcomes.append(Outcome(case, mode, _rank(case, hits), deep, top))
    return result


def _rank(case: Case, hits: Sequence[Any]) -> int | None:
    return next((n for n, h in enumerate(hits, start=1) if case.found_by(h.video_id, h.text)), None)


def unmatched(cases: Iterable[Case], segments: Iterable[tuple[str, str]]) -> list[Case]:
    """Pairs whose expected segment is not in the corpus at all (``segments``: (video_id, text)):
    the ASR wrote it differently, so the pair cannot be found by any mode."""
    rows = list(segments)
    return [c for c in cases if not any(c.found_by(v, t) for v, t in rows)]


@dataclass
class Run:
    """An ingest of the corpus and the evaluation on it."""

    summary: RunSummary
    segments: dict[str, list[tuple[int, str]]]  # video id → (idx, text) in order
    evaluation: Evaluation
    unmatched: list[Case]  # pairs whose expected text the ASR never wrote
    ingest_s: float
    eval_s: float


async def ingest_and_evaluate(settings: Settings, cases: Sequence[Case] | None = None) -> Run:
    """Serve the corpus on a local channel, ingest it with the real engine into
    ``settings.database_url``, then evaluate every pair in every mode."""
    cases = list(cases if cases is not None else load_cases())
    episodes = corpus_episodes()
    async with ChannelServer(episodes=episodes) as channel, Engine(settings) as engine:
        t0 = time.perf_counter()
        summary = await engine.stream(channel.feed_url)
        t1 = time.perf_counter()
        segments: dict[str, list[tuple[int, str]]] = {}
        for ep in episodes:
            stored = await engine.database.video_segments(ep.id)
            segments[ep.id] = [(r["idx"], r["text"]) for r in stored[1]] if stored else []
        evaluation = await evaluate(engine, cases)
        t2 = time.perf_counter()
    flat = [(vid, text) for vid, rows in segments.items() for _, text in rows]
    return Run(summary, segments, evaluation, unmatched(cases, flat), t1 - t0, t2 - t1)
