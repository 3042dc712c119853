"""Command line: parse → Settings → logging → run the Engine. No pipeline logic lives here.

Exit codes: 0 every selected video stored; 1 some failed, or the run stopped itself (a bot
check that persists: one line of advice on stderr); 2 usage or configuration error (one line on
stderr); 130 stopped by a signal before the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import Any

import aiohttp
from rich.console import Console, RenderableType
from rich.live import Live

from ytingest.cli_args import build_parser, check_speaker_args, settings_from
from ytingest.cli_cluster import (
    cmd_db,
    cmd_enqueue,
    cmd_worker,
    cmd_workers,
    default_database,
    prepare_worker,
    top_database,
)
from ytingest.config import Settings
from ytingest.doctor import format_line, run_checks, summary_line
from ytingest.engine import Engine, first_error
from ytingest.errors import ConfigError, YtingestError
from ytingest.eventloop import run
from ytingest.export import render
from ytingest.items import RunSummary
from ytingest.logs import configure_logging, redact
from ytingest.malloc import limit_arenas
from ytingest.monitor.dashboard import render as render_dashboard
from ytingest.monitor.report import write_report
from ytingest.search import group_by_video
from ytingest.speakers.naming import merge_voices, name_voice

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: Sequence[str] | None = None) -> int:
    limit_arenas()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "stream" and args.dashboard is None:
        args.dashboard = sys.stderr.isatty() and not args.json
    quiet = args.command == "stream" and args.dashboard and args.log_level == "info"
    configure_logging(args.log_format, "warning" if quiet else args.log_level)
    try:
        if args.command == "top":
            return run(top_database(settings_from(args), args) if args.database else top(args))
        if args.command == "worker":
            prepare_worker(args)
        settings = settings_from(args)
        if args.command not in ("db", "doctor"):
            settings = default_database(settings)
        if getattr(args, "limit", None) is not None and args.limit < 1:
            raise ConfigError("--limit must be at least 1")
        if args.command == "speakers":
            check_speaker_args(args)
        if args.command == "doctor":  # no Engine: the doctor checks what starting one needs
            return run(cmd_doctor(settings, args), loop=settings.loop)
        if args.command == "db":  # no Engine: it starts or stops the server engines connect to
            return run(cmd_db(settings, args), loop=settings.loop)
        command: Callable[[Engine, argparse.Namespace], Awaitable[int]] = COMMANDS[args.command]
        return run(_with_engine(settings, args, command), loop=settings.loop)
    except YtingestError as exc:
        print(f"ytingest: error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("ytingest: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


async def _with_engine(
    settings: Settings,
    args: argparse.Namespace,
    command: Callable[[Engine, argparse.Namespace], Awaitable[int]],
) -> int:
    async with Engine(settings) as engine:
        _install_signals(engine)
        return await command(engine, args)


def _install_signals(engine: Engine) -> None:
    """First SIGINT/SIGTERM: graceful stop. Second: cancel everything."""
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    seen = 0

    def on_signal() -> None:
        nonlocal seen
        seen += 1
        if seen == 1:
            engine.stop()
        elif main_task is not None:
            main_task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl-C raises KeyboardInterrupt instead
            pass


# ---- commands ----------------------------------------------------------------------------------


async def cmd_stream(engine: Engine, args: argparse.Namespace) -> int:
    try:
        async with asyncio.TaskGroup() as tg:
            listing = {k: getattr(args, k) for k in ("limit", "skip_shorts", "since", "until", "new_only")}
            run = tg.create_task(engine.stream(args.url, **listing))
            if args.dashboard:
                tg.create_task(_live(lambda: render_dashboard(engine.status_document()), until=run))
    except* YtingestError as group:
        raise first_error(group) from None
    summary = run.result()
    if args.report is not None and engine.monitor is not None:
        write_report(list(engine.monitor.history), args.report, title=f"ytingest: {args.url}")
    return _finish(summary, as_json=args.json)


def _finish(summary: RunSummary, *, as_json: bool) -> int:
    """Print the run's summary; its exit code: 1 halted (its advice on stderr) or some failed,
    130 stopped, 0 all stored."""
    if as_json:
        print(json.dumps(summary.to_dict()))
    else:
        _print_summary(summary)
    if summary.halted:
        print(f"ytingest: stopped: {summary.halted}", file=sys.stderr)
        return EXIT_FAILED
    if summary.stopped_early:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.failed else EXIT_OK


async def _live(frame: Callable[[], RenderableType], *, until: asyncio.Task[Any]) -> None:
    """Redraw ``frame()`` on stderr twice a second until ``until`` is done."""
    with Live(frame(), console=Console(stderr=True), refresh_per_second=4, redirect_stderr=True) as live:
        while not until.done():
            await asyncio.wait({until}, timeout=0.5)
            live.update(frame())


async def top(args: argparse.Namespace) -> int:
    """Poll a running engine's /status and draw the same view ``stream`` draws."""
    url = f"http://{args.host}:{args.port}/status"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:

        async def fetch() -> dict[str, Any]:
            try:
                async with session.get(url) as resp:
                    resp.raise_for_status()
                    doc: dict[str, Any] = await resp.json()
                    return doc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise ConfigError(
                    f"no ytingest engine answers at {url}: {str(exc) or type(exc).__name__}"
                ) from None

        status = await fetch()
        if args.once:
            Console(width=None if sys.stdout.isatty() else 160).print(render_dashboard(status))
            return EXIT_OK
        console = Console(stderr=True)
        with Live(render_dashboard(status), console=console, refresh_per_second=2) as live:
            while True:
                await asyncio.sleep(1.0)
                try:
                    live.update(render_dashboard(await fetch()))
                except ConfigError:
                    console.print("engine finished")
                    return EXIT_OK


def _print_summary(summary: RunSummary) -> None:
    print(
        f"done {summary.done}, failed {summary.failed}, skipped {summary.skipped}; "
        f"{summary.segments} segments from {summary.audio_seconds:.1f} s of audio "
        f"in {summary.wall_seconds:.1f} s"
    )
    for f in summary.failures:
        print(f"  failed {f.video_id} ({f.stage}): {f.reason}")


async def cmd_retry(engine: Engine, args: argparse.Namespace) -> int:
    summary = await engine.retry(include_pending=args.pending)
    return _finish(summary, as_json=args.json)


async def cmd_search(engine: Engine, args: argparse.Namespace) -> int:
    options = ("limit", "speaker", "channel", "video", "since", "until", "min_score")
    hits = await engine.search(args.query, mode=args.search_mode, **{k: getattr(args, k) for k in options})
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], ensure_ascii=False))
        return EXIT_OK
    for group in group_by_video(hits) if args.group else [None]:
        if group is not None:
            print(f"{group.title} ({group.video_id})")
        for h in group.hits if group is not None else hits:
            who = f" [{h.speaker}]" if h.speaker else ""
            print(f"{h.score:.3f}  {h.title} @ {int(h.start)}s{who}\n       {h.text}\n       {h.url}")
    if not hits:
        print("no matches")
    return EXIT_OK


async def cmd_serve(engine: Engine, args: argparse.Namespace) -> int:
    from ytingest.web import serve  # aiohttp pages and templates: loaded only for this command

    def ready(url: str) -> None:
        print(f"ytingest: serving {url} (search), {url}run (live run); Ctrl-C stops", flush=True)

    server = asyncio.create_task(
        serve(engine, host=args.host, port=args.port, run_url=args.run_url, ready=ready)
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # a server has nothing to drain: stop at once
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, server.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await server
    return EXIT_OK


async def cmd_status(engine: Engine, args: argparse.Namespace) -> int:
    report = await engine.database.status(channel=args.channel)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return EXIT_OK
    v = report["videos"]
    warned = f" ({report['warned']} with a warning)" if report.get("warned") else ""
    print(
        f"{'videos' if args.channel is None else f'videos of {args.channel}'}:"
        f" {v['done']} done{warned}, {v['failed']} failed, {v['pending']} pending;"
        f" {report['segments']} segments"
    )
    for f in report["failures"]:
        print(f"  failed {f['video_id']} ({f['stage']}, {f['attempts']} attempts): {f['reason']}")
    for w in report.get("warnings", []):
        print(f"  warning {w['video_id']}: {w['warning']}")
    for w in report.get("waiting", []):
        print(f"  waiting {w['video_id']} ({w['status']}): {w['title']}")
    if args.channel is not None and not any(v.values()) and not report.get("waiting"):
        print("  no videos of that channel URL: `ytingest channels` lists the URLs as they were given")
    return EXIT_OK


async def cmd_channels(engine: Engine, args: argparse.Namespace) -> int:
    channels = await engine.channels()
    if args.json:
        print(json.dumps(channels, ensure_ascii=False))
        return EXIT_OK
    for c in channels:
        name = f" ({c['name']})" if c.get("name") else ""
        print(
            f"{c['url']}{name}: {c['done']} done, {c['failed']} failed, {c['pending']} pending;"
            f" {c['audio_hours']:.2f} h of audio; newest upload {c.get('latest_upload') or 'unknown'};"
            f" last run {c['last_run'] or 'never'}"
        )
    if not channels:
        print("no channels yet (ytingest stream URL)")
    return EXIT_OK


async def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    """One line per check (or one JSON object); 0 when a stream would work, else 1."""
    report = await run_checks(settings)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        for check in report.checks:
            print(format_line(check))
        print(summary_line(report))
    return EXIT_OK if report.ok else EXIT_FAILED


async def cmd_export(engine: Engine, args: argparse.Namespace) -> int:
    found = await engine.database.video_segments(args.video_id)
    if found is None:
        raise ConfigError(f"video {args.video_id!r} is not stored")
    text = render(found[1], args.format, video=found[0])
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return EXIT_OK


def _count(voice: dict[str, Any]) -> str:
    """``3 segments in 1 video``."""
    n, v = voice["segments"], voice["videos"]
    return f"{n} segment{'s' * (n != 1)} in {v} video{'s' * (v != 1)}"


async def cmd_speakers(engine: Engine, args: argparse.Namespace) -> int:
    if args.action != "list":
        edit = name_voice if args.action == "name" else merge_voices
        done = await edit(engine.database, *args.voices, channel=args.channel)
        print(json.dumps(asdict(done), ensure_ascii=False) if args.json else done.line())
        return EXIT_OK
    report = await engine.speakers()
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return EXIT_OK
    for p in report["enrolled"]:
        origin = f"{len(p['clips'])} clips" if p.get("source", "folder") == "folder" else "named"
        print(f"{p['name']}: {_count(p)} ({origin}, {p['model']})")
    for u in report["unknown"]:
        where = u.get("channel") or "videos with no channel"
        print(f"{u['label']} (not enrolled) of {where}: {_count(u)}")
    if not report["enrolled"] and not report["unknown"]:
        print("no speakers yet (ytingest stream URL labels the voices it hears)")
    return EXIT_OK


COMMANDS: dict[str, Callable[[Engine, argparse.Namespace], Awaitable[int]]] = {
    "stream": cmd_stream,
    "retry": cmd_retry,
    "status": cmd_status,
    "channels": cmd_channels,
    "search": cmd_search,
    "serve": cmd_serve,
    "export": cmd_export,
    "speakers": cmd_speakers,
    "enqueue": cmd_enqueue,
    "worker": cmd_worker,
    "workers": cmd_workers,
}
