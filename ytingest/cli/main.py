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

from ytingest.cli.args import check_speaker_args, listing_from, parse_args, query_from, settings_from
from ytingest.cli.maintain import cmd_delete, cmd_reprocess, print_models
from ytingest.cli.output import (
    print_channels,
    print_hits,
    print_json,
    print_speakers,
    print_status,
    print_summary,
    say,
)
from ytingest.cli.workers import (
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
from ytingest.engine import Engine
from ytingest.errors import ConfigError, YtingestError, first_error
from ytingest.eventloop import run
from ytingest.export import render
from ytingest.items import RunSummary
from ytingest.logs import configure_logging, redact
from ytingest.malloc import limit_arenas, trim_periodically
from ytingest.models.embedder import embed_model_name
from ytingest.monitor.dashboard import render as render_dashboard
from ytingest.monitor.report import write_report
from ytingest.preflight import preflight
from ytingest.sourcetext import public_url
from ytingest.speakers.naming import merge_voices, name_voice
from ytingest.termtext import safe

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: Sequence[str] | None = None) -> int:
    limit_arenas()
    trim_periodically()
    args = parse_args(argv)
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
        preflight(args, settings)  # one line, before any database, model or yt-dlp
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
        say(f"ytingest: error: {redact(str(exc))}", err=True)
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
            run = tg.create_task(engine.stream(args.url, **listing_from(args)))
            if args.dashboard:
                tg.create_task(_live(lambda: render_dashboard(engine.status_document()), until=run))
    except* YtingestError as group:
        raise first_error(group) from None
    code = _finish(run.result(), as_json=args.json)  # the summary first: a failed report never loses it
    if args.report is not None and engine.monitor is not None:
        try:
            write_report(list(engine.monitor.history), args.report, title=f"ytingest: {public_url(args.url)}")
        except OSError as exc:
            say(f"ytingest: error: --report {args.report}: {exc.strerror or exc}", err=True)
            return code if code == EXIT_INTERRUPTED else EXIT_USAGE
    return code


def _finish(summary: RunSummary, *, as_json: bool) -> int:
    """Print the run's summary; its exit code: 1 halted (its advice on stderr) or some failed,
    130 stopped, 0 all stored."""
    if as_json:
        print(json.dumps(summary.to_dict()))
    else:
        print_summary(summary)
    if summary.halted:
        say(f"ytingest: stopped: {summary.halted}", err=True)
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


async def cmd_retry(engine: Engine, args: argparse.Namespace) -> int:
    summary = await engine.retry(include_pending=args.pending)
    return _finish(summary, as_json=args.json)


async def cmd_search(engine: Engine, args: argparse.Namespace) -> int:
    # the engine's embedder's vectors are the ones compared
    query = query_from(args, embed_model=embed_model_name(engine.settings.embed_model))
    hits = await engine.search(query)
    if args.json:
        print_json([h.to_dict() for h in hits])
        return EXIT_OK
    print_hits(hits, group=args.group)
    return EXIT_OK


async def cmd_serve(engine: Engine, args: argparse.Namespace) -> int:
    from ytingest.web import serve  # aiohttp pages and templates: loaded only for this command

    def ready(url: str) -> None:
        print(f"ytingest: serving {url} (search), {url}run (live run); Ctrl-C stops", flush=True)

    server = asyncio.create_task(
        serve(
            engine,
            host=args.host,
            port=args.port,
            run_url=args.run_url,
            ready=ready,
            embed_model=embed_model_name(engine.settings.embed_model),
        )
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # a server has nothing to drain: stop at once
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, server.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await server
    return EXIT_OK


async def cmd_mcp(engine: Engine, args: argparse.Namespace) -> int:
    """stdio: until the client closes the pipe (stdout is the protocol's); --http: until a signal."""
    from ytingest.mcp_server import serve_mcp  # the MCP SDK: loaded only for this command

    def ready(url: str) -> None:
        print(f"ytingest: MCP over streamable HTTP at {url}; Ctrl-C stops", flush=True)

    server = asyncio.create_task(
        serve_mcp(engine, http=args.http, host=args.host, port=args.port, ready=ready)
    )
    loop = asyncio.get_running_loop()
    # read-only, nothing to drain: stdio stops at once; --http: uvicorn catches the signal itself and
    # shuts down gracefully (cancelling it as well would log its lifespan's CancelledError)
    stop = server.cancel if not args.http else lambda: None
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)
    with contextlib.suppress(asyncio.CancelledError):
        await server
    return EXIT_OK


async def cmd_status(engine: Engine, args: argparse.Namespace) -> int:
    report = await engine.database.status(channel=args.channel)
    report["models"] = await engine.database.embed_models_report(args.channel)
    if args.json:
        print_json(report)
        return EXIT_OK
    print_status(report, args.channel)
    print_models(report["models"])
    return EXIT_OK


async def cmd_channels(engine: Engine, args: argparse.Namespace) -> int:
    channels = await engine.channels()
    if args.json:
        print_json(channels)
        return EXIT_OK
    print_channels(channels)
    return EXIT_OK


async def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    """One line per check (or one JSON object); 0 when a stream would work, else 1."""
    report = await run_checks(settings)
    if args.json:
        print_json(report.to_dict())
    else:
        say(*(format_line(check) for check in report.checks), summary_line(report))
    return EXIT_OK if report.ok else EXIT_FAILED


async def cmd_export(engine: Engine, args: argparse.Namespace) -> int:
    found = await engine.database.video_segments(args.video_id)
    if found is None:
        raise ConfigError(f"video {args.video_id!r} is not stored")
    text = render(found[1], args.format, video=found[0])
    if args.output is None:
        sys.stdout.write(safe(text, newlines=True) if sys.stdout.isatty() else text)
    else:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--output {args.output}: {exc.strerror or exc}") from None
    return EXIT_OK


async def cmd_speakers(engine: Engine, args: argparse.Namespace) -> int:
    if args.action != "list":
        edit = name_voice if args.action == "name" else merge_voices
        done = await edit(engine.database, *args.voices, channel=args.channel)
        if args.json:
            print_json(asdict(done))
        else:
            say(done.line())
        return EXIT_OK
    report = await engine.speakers()
    if args.json:
        print_json(report)
        return EXIT_OK
    print_speakers(report)
    return EXIT_OK


COMMANDS: dict[str, Callable[[Engine, argparse.Namespace], Awaitable[int]]] = {
    "stream": cmd_stream,
    "retry": cmd_retry,
    "status": cmd_status,
    "channels": cmd_channels,
    "search": cmd_search,
    "serve": cmd_serve,
    "mcp": cmd_mcp,
    "export": cmd_export,
    "speakers": cmd_speakers,
    "enqueue": cmd_enqueue,
    "worker": cmd_worker,
    "workers": cmd_workers,
    "reprocess": cmd_reprocess,
    "delete": cmd_delete,
}
