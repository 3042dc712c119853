"""The last run's final ``/status`` document, kept in ``YTINGEST_HOME/last-run.json``.

``stream`` and ``serve`` are separate processes, and a stream's ``/status`` ends with it: the run
writes its last snapshot and summary here as it ends (state ``finished``, or ``failed`` with the
reason), so the live run page can say "finished: N stored, M failed" instead of a connection error.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ytingest.monitor.monitor import Monitor

LAST_RUN = "last-run.json"
MAX_BYTES = 4_000_000  # a status document is a few KB


def last_run_path(home: Path) -> Path:
    return home / LAST_RUN


def finished_document(
    channel: str,
    snapshot: dict[str, Any] | None,
    knobs: dict[str, Any],
    summary: dict[str, Any] | None,
    *,
    error: str = "",
) -> dict[str, Any]:
    """The document a finished (``error``: failed) run leaves: its last snapshot, knobs, summary
    (without the failures' list) and when it ended."""
    brief = {k: v for k, v in (summary or {}).items() if k != "failures"}
    return {
        "state": "failed" if error else "finished",
        "snapshot": snapshot,
        "knobs": knobs,
        "summary": brief or None,
        "channel": channel,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "message": error,
    }


def publish(
    home: Path,
    channel: str,
    monitor: Monitor | None,
    knobs: dict[str, Any],
    summary: dict[str, Any] | None = None,
    *,
    error: str = "",
) -> dict[str, Any]:
    """The run's final document from its monitor's last snapshot, written to the file; returned
    for the engine's own ``/status``."""
    snap = monitor.latest.to_dict() if monitor is not None and monitor.latest is not None else None
    doc = finished_document(channel, snap, knobs, summary, error=error)
    write_last_run(home, doc)
    return doc


def write_last_run(home: Path, doc: dict[str, Any]) -> None:
    """Replace the file at once (a reader never sees half a document); an unwritable home is
    not the run's failure."""
    path = last_run_path(home)
    tmp = path.with_name(f".{LAST_RUN}.{os.getpid()}")
    try:
        home.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(doc, default=str))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def read_last_run(home: Path) -> dict[str, Any] | None:
    """The last run's document; None when there is none or it is not one."""
    try:
        with last_run_path(home).open("rb") as f:
            body = f.read(MAX_BYTES + 1)
        doc = json.loads(body) if len(body) <= MAX_BYTES else None
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("state") not in ("finished", "failed"):
        return None
    return doc
