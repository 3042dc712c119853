"""What the CLI prints: each line through ``termtext.safe``, each JSON document through
``termtext.dumps``, so a stored title, name, segment or yt-dlp message is shown as text and
never reaches the terminal as a control sequence."""

from __future__ import annotations

import sys
from typing import Any

from ytingest.items import RunSummary, SearchHit
from ytingest.search import group_by_video
from ytingest.termtext import dumps, safe


def say(*lines: str, err: bool = False) -> None:
    """Each line printed with its controls escaped (stdout, or stderr with ``err``)."""
    for line in lines:
        print(safe(line), file=sys.stderr if err else sys.stdout)


def print_json(obj: Any) -> None:
    """One JSON document on one line, non-ASCII kept, control and bidi characters escaped."""
    print(dumps(obj))


def print_summary(summary: RunSummary) -> None:
    resumed = summary.audio_seconds - summary.audio_seconds_transcribed
    say(
        f"done {summary.done}, failed {summary.failed}, skipped {summary.skipped}; "
        f"{summary.segments} segments from {summary.audio_seconds:.1f} s of audio "
        f"in {summary.wall_seconds:.1f} s"
        + (f" ({resumed:.1f} s of it resumed from checkpoints)" if resumed >= 1.0 else "")
    )
    say(*(f"  failed {f.video_id} ({f.stage}): {f.reason}" for f in summary.failures))


def print_hits(hits: list[SearchHit], *, group: bool) -> None:
    """Each hit on three lines (score, title, second, speaker; text; link), under its video's
    title with ``group``."""
    for g in group_by_video(hits) if group else [None]:
        if g is not None:
            say(f"{g.title} ({g.video_id})")
        for h in g.hits if g is not None else hits:
            who = f" [{h.speaker}]" if h.speaker else ""
            say(f"{h.score:.3f}  {h.title} @ {int(h.start)}s{who}", f"       {h.text}", f"       {h.url}")
    if not hits:
        say("no matches")


def print_status(report: dict[str, Any], channel: str | None) -> None:
    v = report["videos"]
    warned = f" ({report['warned']} with a warning)" if report.get("warned") else ""
    say(
        f"{'videos' if channel is None else f'videos of {channel}'}:"
        f" {v['done']} done{warned}, {v['failed']} failed, {v['pending']} pending;"
        f" {report['segments']} segments"
    )
    for f in report["failures"]:
        say(f"  failed {f['video_id']} ({f['stage']}, {f['attempts']} attempts): {f['reason']}")
    for w in report.get("warnings", []):
        say(f"  warning {w['video_id']}: {w['warning']}")
    for w in report.get("waiting", []):
        say(f"  waiting {w['video_id']} ({w['status']}): {w['title']}")
    if channel is not None and not any(v.values()) and not report.get("waiting"):
        say("  no videos of that channel URL: `ytingest channels` lists the URLs as they were given")


def print_channels(channels: list[dict[str, Any]]) -> None:
    for c in channels:
        name = f" ({c['name']})" if c.get("name") else ""
        say(
            f"{c['url']}{name}: {c['done']} done, {c['failed']} failed, {c['pending']} pending;"
            f" {c['audio_hours']:.2f} h of audio; newest upload {c.get('latest_upload') or 'unknown'};"
            f" last run {c['last_run'] or 'never'}"
        )
    if not channels:
        say("no channels yet (ytingest stream URL)")


def _count(voice: dict[str, Any]) -> str:
    """``3 segments in 1 video``."""
    n, v = voice["segments"], voice["videos"]
    return f"{n} segment{'s' * (n != 1)} in {v} video{'s' * (v != 1)}"


def print_speakers(report: dict[str, Any]) -> None:
    for p in report["enrolled"]:
        origin = f"{len(p['clips'])} clips" if p.get("source", "folder") == "folder" else "named"
        say(f"{p['name']}: {_count(p)} ({origin}, {p['model']})")
    for u in report["unknown"]:
        where = u.get("channel") or "videos with no channel"
        say(f"{u['label']} (not enrolled) of {where}: {_count(u)}")
    if not report["enrolled"] and not report["unknown"]:
        say("no speakers yet (ytingest stream URL labels the voices it hears)")
