"""Command line: parse → Settings → logging → run the Engine. No pipeline logic lives here.

Exit codes: 0 every selected video stored; 1 some failed; 2 usage or configuration
error (one line on stderr); 130 stopped by a signal before the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import ValidationError
from rich.console import Console, RenderableType
from rich.live import Live

from ytingest.config import Settings
from ytingest.engine import Engine, first_error
from ytingest.errors import ConfigError, YtingestError
from ytingest.eventloop import run
from ytingest.export import FORMATS, render
from ytingest.items import RunSummary
from ytingest.logs import configure_logging, redact
from ytingest.monitor.dashboard import render as render_dashboard
from ytingest.monitor.report import write_report
from ytingest.search import MODES, group_by_video, parse_day

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("common options")
    g.add_argument("--home", type=Path, help="data folder (YTINGEST_HOME)")
    g.add_argument("--database-url", help="PostgreSQL with pgvector (DATABASE_URL); default: embedded")
    g.add_argument("--log-format", choices=["json", "console", "auto"], default="auto")
    g.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")

    parser = argparse.ArgumentParser(prog="ytingest", description=__doc__.split("\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("stream", parents=[common], help="ingest a channel (anything yt-dlp lists)")
    p.add_argument("url")
    p.add_argument("--limit", type=int, help="only the N newest videos")
    p.add_argument("--skip-shorts", action="store_true", help="skip videos under 60 s and /shorts/")
    p.add_argument(
        "--voices-dir", type=Path, help="voices to enrol; turns on speaker identification (VOICES_DIR)"
    )
    p.add_argument("--keep-audio", action="store_true", default=None, help="keep downloaded audio")
    p.add_argument("--io-workers", type=int, help="concurrent downloads (IO_WORKERS)")
    p.add_argument("--asr-workers", type=int, help="parallel transcriptions (ASR_WORKERS)")
    p.add_argument("--batch-size", type=int, help="rows per embedding micro-batch (BATCH_SIZE)")
    p.add_argument("--encode-batch-size", type=int, help="rows per model forward pass (ENCODE_BATCH_SIZE)")
    p.add_argument("--db-workers", type=int, help="database writers (DB_WORKERS)")
    p.add_argument("--asr-model", help="faster-whisper size name or model folder (ASR_MODEL)")
    p.add_argument("--embed-model", help="sentence-transformers name or folder (EMBED_MODEL)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument(
        "--dashboard",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live view on the terminal (default: on when stderr is a terminal and not --json)",
    )
    p.add_argument(
        "--autotune",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let ytingest resize IO_WORKERS (default: on unless IO_WORKERS is set)",
    )
    p.add_argument(
        "--metrics-port", type=int, help="serve /metrics and /status on 127.0.0.1:PORT (0: any free port)"
    )
    p.add_argument("--report", type=Path, help="write the run's timeline to this HTML file")
    # performance (issue 6)
    p.add_argument("--mode", choices=["stream", "bulk"], help="stream (default) or 3-phase bulk (MODE)")
    p.add_argument("--asr-batching", choices=["off", "file", "cross"], help="ASR batching (ASR_BATCHING)")
    p.add_argument("--asr-batch-size", type=int, help="speech chunks per model call (ASR_BATCH_SIZE)")

    p = sub.add_parser("search", parents=[common], help="find segments by meaning and by words")
    p.add_argument("query", help='words, "an exact phrase", -excluded')
    p.add_argument("--limit", type=int, default=10)
    p.add_argument(  # not ``mode``: that is the stream's MODE setting
        "--mode", dest="search_mode", choices=MODES, default="hybrid", help="ranking (default: hybrid)"
    )
    p.add_argument("--speaker", help="only segments of this speaker")
    p.add_argument("--channel", help="only videos of this channel URL")
    p.add_argument("--video", help="only this video id")
    p.add_argument("--since", type=_day, help="uploaded on or after: YYYY-MM-DD or 7d, 2w, 3m")
    p.add_argument("--until", type=_day, help="uploaded on or before: YYYY-MM-DD or 7d, 2w, 3m")
    p.add_argument("--min-score", type=float, help="drop hits scoring below this (the mode's score)")
    p.add_argument("--group", action="store_true", help="group hits by video, best video first")
    p.add_argument("--json", action="store_true", help="print the hits as one JSON array")

    p = sub.add_parser("serve", parents=[common], help="the search page, a live run page and a JSON API")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--run-url", help="a running stream's --metrics-port address, for the run page")

    p = sub.add_parser("retry", parents=[common], help="try the failed videos again")
    p.add_argument("--failed", action="store_true", default=True, help="re-queue failed videos (default)")
    p.add_argument("--pending", action="store_true", help="also videos a stopped run left pending")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    p = sub.add_parser("status", parents=[common], help="videos done/failed/pending and failure reasons")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("top", help="attach to a running engine's /status and show the live view")
    p.add_argument("--port", type=int, default=9464, help="the engine's --metrics-port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--once", action="store_true", help="print one frame and exit")
    p.add_argument("--log-format", choices=["json", "console", "auto"], default="auto")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="warning")

    p = sub.add_parser("speakers", parents=[common], help="enrolled voices, unknown voices, segments each")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("export", parents=[common], help="write a stored video's transcript")
    p.add_argument("video_id")
    p.add_argument("--format", choices=FORMATS, default="json")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    return parser


_SETTING_FLAGS = (
    "io_workers",
    "asr_workers",
    "batch_size",
    "encode_batch_size",
    "db_workers",
    "asr_model",
    "embed_model",
    "keep_audio",
    "database_url",
    "autotune",
    "metrics_port",
    "voices_dir",
    "mode",
    "asr_batching",
    "asr_batch_size",
)


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment and .env first, then any flag the user gave."""
    overrides: dict[str, Any] = {
        k: getattr(args, k) for k in _SETTING_FLAGS if getattr(args, k, None) is not None
    }
    if getattr(args, "home", None) is not None:
        overrides["ytingest_home"] = args.home
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "stream" and args.dashboard is None:
        args.dashboard = sys.stderr.isatty() and not args.json
    quiet = args.command == "stream" and args.dashboard and args.log_level == "info"
    configure_logging(args.log_format, "warning" if quiet else args.log_level)
    try:
        if args.command == "top":
            return run(top(args))
        settings = settings_from(args)
        if getattr(args, "limit", None) is not None and args.limit < 1:
            raise ConfigError("--limit must be at least 1")
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
            run = tg.create_task(engine.stream(args.url, limit=args.limit, skip_shorts=args.skip_shorts))
            if args.dashboard:
                tg.create_task(_live(lambda: render_dashboard(engine.status_document()), until=run))
    except* YtingestError as group:
        raise first_error(group) from None
    summary = run.result()
    if args.report is not None and engine.monitor is not None:
        write_report(list(engine.monitor.history), args.report, title=f"ytingest: {args.url}")
    return _finish(summary, as_json=args.json)


def _finish(summary: RunSummary, *, as_json: bool) -> int:
    """Print the run's summary; its exit code: 130 stopped, 1 some failed, 0 all stored."""
    if as_json:
        print(json.dumps(summary.to_dict()))
    else:
        _print_summary(summary)
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
            print(f"{h.score:.3f}  {h.title} @ {h.start:.0f}s{who}\n       {h.text}\n       {h.url}")
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


def _day(value: str) -> date:
    """``parse_day`` for argparse: a bad date is a usage error (exit 2) with one line."""
    try:
        return parse_day(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def cmd_status(engine: Engine, args: argparse.Namespace) -> int:
    report = await engine.status()
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return EXIT_OK
    v = report["videos"]
    print(
        f"videos: {v['done']} done, {v['failed']} failed, {v['pending']} pending;"
        f" {report['segments']} segments"
    )
    for f in report["failures"]:
        print(f"  failed {f['video_id']} ({f['stage']}, {f['attempts']} attempts): {f['reason']}")
    return EXIT_OK


async def cmd_export(engine: Engine, args: argparse.Namespace) -> int:
    found = await engine.database.video_segments(args.video_id)
    if found is None:
        raise ConfigError(f"video {args.video_id!r} is not stored")
    text = render(found[1], args.format)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return EXIT_OK


async def cmd_speakers(engine: Engine, args: argparse.Namespace) -> int:
    report = await engine.speakers()
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return EXIT_OK
    for p in report["enrolled"]:
        print(
            f"{p['name']}: {p['segments']} segments in {p['videos']} videos"
            f" ({len(p['clips'])} clips, {p['model']})"
        )
    for u in report["unknown"]:
        print(f"{u['label']} (not enrolled): {u['segments']} segments in {u['videos']} videos")
    if not report["enrolled"] and not report["unknown"]:
        print("no speakers yet (ytingest stream URL --voices-dir DIR)")
    return EXIT_OK


COMMANDS: dict[str, Callable[[Engine, argparse.Namespace], Awaitable[int]]] = {
    "stream": cmd_stream,
    "search": cmd_search,
    "serve": cmd_serve,
    "status": cmd_status,
    "retry": cmd_retry,
    "export": cmd_export,
    "speakers": cmd_speakers,
}
