"""Command line: parse → Settings → logging → run the Engine. No pipeline logic lives here.

Exit codes: 0 every selected video stored; 1 some failed; 2 usage or configuration
error (one line on stderr); 130 stopped by a signal before the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from ytingest.config import Settings
from ytingest.engine import Engine
from ytingest.errors import ConfigError, YtingestError
from ytingest.export import FORMATS, render
from ytingest.items import RunSummary
from ytingest.logs import configure_logging, redact

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
T = TypeVar("T")


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
    p.add_argument("--db-workers", type=int, help="database writers (DB_WORKERS)")
    p.add_argument("--asr-model", help="faster-whisper size name or model folder (ASR_MODEL)")
    p.add_argument("--embed-model", help="sentence-transformers name or folder (EMBED_MODEL)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    p = sub.add_parser("search", parents=[common], help="find segments by meaning")
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--speaker", help="only segments of this speaker")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("status", parents=[common], help="videos done/failed/pending and failure reasons")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("speakers", parents=[common], help="enrolled voices, unknown voices, segments each")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("export", parents=[common], help="write a stored video's transcript")
    p.add_argument("video_id")
    p.add_argument("--format", choices=FORMATS, default="json")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    return parser


_SETTING_FLAGS = ("io_workers", "asr_workers", "batch_size", "db_workers", "asr_model", "embed_model",
                  "keep_audio", "database_url", "voices_dir")  # fmt: skip


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment and .env first, then any flag the user gave."""
    overrides: dict[str, Any] = {
        k: getattr(args, k) for k in _SETTING_FLAGS if getattr(args, k, None) is not None
    }
    if args.home is not None:
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
    configure_logging(args.log_format, args.log_level)
    try:
        settings = settings_from(args)
        if getattr(args, "limit", None) is not None and args.limit < 1:
            raise ConfigError("--limit must be at least 1")
        command: Callable[[Engine, argparse.Namespace], Awaitable[int]] = COMMANDS[args.command]
        return run_loop(_with_engine(settings, args, command))
    except YtingestError as exc:
        print(f"ytingest: error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ytingest: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop where it exists (not on Windows), else on asyncio's own loop."""
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


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
    summary = await engine.stream(args.url, limit=args.limit, skip_shorts=args.skip_shorts)
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        _print_summary(summary)
    if summary.stopped_early:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.failed else EXIT_OK


def _print_summary(summary: RunSummary) -> None:
    print(
        f"done {summary.done}, failed {summary.failed}, skipped {summary.skipped}; "
        f"{summary.segments} segments from {summary.audio_seconds:.1f} s of audio "
        f"in {summary.wall_seconds:.1f} s"
    )
    for f in summary.failures:
        print(f"  failed {f.video_id} ({f.stage}): {f.reason}")


async def cmd_search(engine: Engine, args: argparse.Namespace) -> int:
    hits = await engine.search(args.query, limit=args.limit, speaker=args.speaker)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], ensure_ascii=False))
        return EXIT_OK
    for h in hits:
        who = f" [{h.speaker}]" if h.speaker else ""
        print(f"{h.score:.3f}  {h.title} @ {h.start:.0f}s{who}\n       {h.text}\n       {h.url}")
    if not hits:
        print("no matches")
    return EXIT_OK


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
        print(f"{p['name']}: {p['segments']} segments in {p['videos']} videos"
              f" ({len(p['clips'])} clips, {p['model']})")  # fmt: skip
    for u in report["unknown"]:
        print(f"{u['label']} (not enrolled): {u['segments']} segments in {u['videos']} videos")
    if not report["enrolled"] and not report["unknown"]:
        print("no speakers yet (ytingest stream URL --voices-dir DIR)")
    return EXIT_OK


COMMANDS: dict[str, Callable[[Engine, argparse.Namespace], Awaitable[int]]] = {
    "stream": cmd_stream,
    "search": cmd_search,
    "status": cmd_status,
    "export": cmd_export,
    "speakers": cmd_speakers,
}
