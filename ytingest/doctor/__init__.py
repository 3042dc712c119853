"""``ytingest doctor``: what a first run needs, checked one thing at a time, each with what to do.

Each check returns a ``Check`` (ok, warn, fail or info; what was found; the fix): the verdicts are
pure functions in ``checks``, the reads of the real things (the yt-dlp child as a run starts it,
the database, the models, the GPU, the disk) are in ``probes``; yt-dlp's plugins, PO token
providers and yt-dlp-ejs in ``plugins``. A report is ``ok`` when no check failed: a stream would work.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date

from ytingest.config import Settings
from ytingest.doctor.checks import (
    Check,
    Report,
    cookies_check,
    disk_check,
    gpu_checks,
    js_runtime_check,
    parse_ytdlp_version,
    ytdlp_version_check,
)
from ytingest.doctor.plugins import ejs_check, plugin_checks, wanted_ejs
from ytingest.doctor.probes import (
    database_check,
    free_bytes,
    installed_version,
    model_checks,
    probe_gpu,
    ytdlp_header,
)

__all__ = ["Check", "Report", "format_line", "run_checks", "summary_line"]


async def run_checks(settings: Settings, *, today: date | None = None, now: float | None = None) -> Report:
    """Every check against the real yt-dlp child, database, models, GPU and disk."""
    (code, header), db, plugins = await asyncio.gather(
        ytdlp_header(settings), database_check(settings), plugin_checks(settings)
    )
    version = parse_ytdlp_version(header) or (None if settings.ytdlp_path else installed_version("yt-dlp"))
    checks: list[Check] = [
        ytdlp_version_check(version, today or date.today(), custom_path=settings.ytdlp_path is not None),
        js_runtime_check(header, code),
        *([] if settings.ytdlp_path else [ejs_check(wanted_ejs(), installed_version("yt-dlp-ejs"))]),
        *plugins,
        cookies_check(settings.cookies_file, settings.cookies_from_browser, now or time.time()),
        db,
        *await model_checks(settings),
    ]
    gpu = await asyncio.to_thread(probe_gpu)
    checks += gpu_checks(gpu, asr_device=settings.asr_device, embed_device=settings.embed_device)
    home = settings.ytingest_home
    free = await asyncio.to_thread(free_bytes, home)
    checks.append(disk_check(home, free, min_free_bytes=settings.min_free_bytes))
    return Report(tuple(checks))


def format_line(check: Check) -> str:
    """``ok    js runtime   yt-dlp uses deno-2.9.8 with yt-dlp-ejs`` (and `` → fix`` when not ok)."""
    fix = f" → {check.fix}" if check.fix and check.status in ("warn", "fail") else ""
    return f"{check.status:<5} {check.name:<12} {check.detail}{fix}"


def summary_line(report: Report) -> str:
    failed = [c.name for c in report.checks if c.status == "fail"]
    if not failed:
        return "ready: a stream would work"
    return f"not ready: {len(failed)} check(s) failed ({', '.join(failed)})"
