"""The live run page's data: a running engine's ``/status`` document, fetched server-side.

The browser only ever talks to this app (CSP ``connect-src 'self'``); this module asks the engine at
``run_url`` and always answers a document: the engine's own ``state``/``snapshot``/``knobs``, or
``{"state": "unreachable" | "unconfigured", "snapshot": null, "message": ...}`` — never an error.
A run that ended is ``finished`` (or ``failed``) with its ``summary``.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from ytingest.logs import get_logger

log = get_logger()
MAX_STATUS_BYTES = 4_000_000  # a /status document is a few KB


def _absent(state: str, message: str, source: str | None) -> dict[str, Any]:
    return {"state": state, "snapshot": None, "knobs": {}, "source": source, "message": message}


async def fetch_status(client: aiohttp.ClientSession, run_url: str | None) -> dict[str, Any]:
    """``GET {run_url}/status`` with the client's short timeout, reduced to the fields the page draws."""
    if run_url is None:
        return _absent(
            "unconfigured",
            "no run to watch: start `ytingest stream --metrics-port P` and "
            "`ytingest serve --run-url http://127.0.0.1:P`",
            None,
        )
    url = f"{run_url}/status"
    try:
        async with client.get(url, allow_redirects=False) as resp:
            if resp.status != 200:
                return _absent("unreachable", f"{url} answered HTTP {resp.status}", url)
            body = await resp.content.read(MAX_STATUS_BYTES + 1)
            if len(body) > MAX_STATUS_BYTES:
                return _absent("unreachable", f"{url} answered more than a status document", url)
            doc = json.loads(body)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        reason = type(exc).__name__ if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
        log.debug("run_status_unreachable", url=url, reason=reason)
        return _absent("unreachable", f"no ytingest engine answers at {url} ({reason})", url)
    if not isinstance(doc, dict):
        return _absent("unreachable", f"{url} did not answer a ytingest status document", url)
    return reduced(doc, url)


def reduced(doc: dict[str, Any], source: str | None) -> dict[str, Any]:
    """A status document (an engine's, or a finished run's from ``last-run.json``) reduced to the
    fields the page draws; a finished run keeps its summary, channel and end time."""
    snapshot, knobs, summary = doc.get("snapshot"), doc.get("knobs"), doc.get("summary")
    out = {
        "state": str(doc.get("state", "unknown")),
        "snapshot": snapshot if isinstance(snapshot, dict) else None,
        "knobs": knobs if isinstance(knobs, dict) else {},
        "source": source,
        "message": str(doc.get("message") or "") if doc.get("state") == "failed" else "",
    }
    if isinstance(summary, dict):
        out["summary"] = summary
    for key in ("channel", "finished_at"):
        if isinstance(doc.get(key), str):
            out[key] = doc[key]
    return out
