"""The command line's arguments: the parser, and ``Settings`` from the environment plus the flags."""

from __future__ import annotations

import argparse
import shlex
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ytingest.config import Settings
from ytingest.doctor.probes import installed_version
from ytingest.errors import ConfigError
from ytingest.export import FORMATS
from ytingest.search import MODES, parse_day

DESCRIPTION = "YouTube channels → searchable, speaker-attributed transcripts in PostgreSQL + pgvector."
EPILOG = "'ytingest COMMAND --help' lists a command's options; 'ytingest doctor' checks the setup."


SPEAKER_ACTIONS = {"list": 0, "name": 2, "merge": 2}  # `speakers` action -> how many VOICEs it takes


def check_speaker_args(args: argparse.Namespace) -> None:
    """``speakers name LABEL NAME`` / ``merge KEEP GONE`` / plain ``speakers``: the right count."""
    wanted = SPEAKER_ACTIONS[args.action]
    if len(args.voices) != wanted:
        usage = {
            "list": "speakers [--json]",
            "name": "speakers name LABEL NAME",
            "merge": "speakers merge KEEP GONE",
        }
        raise ConfigError(f"usage: ytingest {usage[args.action]} [--channel URL]")
    if args.action == "list" and args.channel is not None:
        raise ConfigError("--channel goes with `speakers name` and `speakers merge`")


def version_line() -> str:
    """``ytingest 0.1.0 (yt-dlp 2026.10.26)``, from the installed packages' metadata."""
    ours, ytdlp = (installed_version(name) or "unknown" for name in ("ytingest", "yt-dlp"))
    return f"ytingest {ours} (yt-dlp {ytdlp})"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("common options")
    g.add_argument("--home", type=Path, help="data folder (YTINGEST_HOME)")
    g.add_argument("--database-url", help="PostgreSQL with pgvector (DATABASE_URL); default: embedded")
    g.add_argument("--log-format", choices=["json", "console", "auto"], default="auto")
    g.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")

    ytdlp = argparse.ArgumentParser(add_help=False)  # for the commands that run yt-dlp, and doctor
    y = ytdlp.add_argument_group("yt-dlp options")
    y.add_argument("--cookies", dest="cookies_file", type=Path, help="Netscape cookies file (COOKIES_FILE)")
    y.add_argument(
        "--cookies-from-browser", help="BROWSER[:PROFILE] to read cookies from (COOKIES_FROM_BROWSER)"
    )
    y.add_argument(
        "--ytdlp-arg",
        action="append",
        metavar="ARG",
        help="an extra yt-dlp option, repeatable: --ytdlp-arg=--proxy --ytdlp-arg=URL (YTDLP_ARGS)",
    )
    y.add_argument("--js-runtime", help="RUNTIME[:PATH] for yt-dlp's YouTube challenges (JS_RUNTIME)")

    parser = argparse.ArgumentParser(prog="ytingest", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=version_line())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    p = sub.add_parser(
        "stream", parents=[common, ytdlp], help="ingest a channel's videos (anything yt-dlp lists)"
    )
    _listing_flags(p)
    _speaker_flags(p)
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
    # performance: run mode and ASR batching
    p.add_argument("--mode", choices=["stream", "bulk"], help="stream (default) or 3-phase bulk (MODE)")
    p.add_argument("--asr-batching", choices=["off", "file", "cross"], help="ASR batching (ASR_BATCHING)")
    p.add_argument("--asr-batch-size", type=int, help="speech chunks per model call (ASR_BATCH_SIZE)")

    p = sub.add_parser("retry", parents=[common, ytdlp], help="try the failed videos again")
    p.add_argument("--failed", action="store_true", default=True, help="re-queue failed videos (default)")
    p.add_argument("--pending", action="store_true", help="also videos a stopped run left pending")
    _speaker_flags(p)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    p = sub.add_parser("status", parents=[common], help="videos done, failed and pending; why each failed")
    p.add_argument("--channel", help="only the videos of this channel URL")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")

    p = sub.add_parser(
        "channels", parents=[common], help="each channel: videos done, failed, pending; hours; last run"
    )
    p.add_argument("--json", action="store_true", help="print the channels as one JSON array")

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
    p.add_argument("--embed-model", help=_EMBED_HELP)
    p.add_argument(
        "--lang",
        help="the query's language for word search: an ISO code (de, es) or a text-search configuration"
        " (german, simple); default: detected among the stored languages (docs/LANGUAGES.md)",
    )

    p = sub.add_parser("serve", parents=[common], help="the search page, a live run page and a JSON API")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--run-url", help="a running stream's --metrics-port address, for the run page")
    p.add_argument("--embed-model", help=_EMBED_HELP)

    p = sub.add_parser(
        "mcp", parents=[common], help="the database as a read-only MCP server for LLM clients (stdio)"
    )
    p.add_argument("--http", action="store_true", help="streamable HTTP at http://HOST:PORT/mcp, not stdio")
    p.add_argument("--host", default="127.0.0.1", help="address to bind with --http (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8766, help="port with --http (default: 8766; 0: any free)")
    p.add_argument("--embed-model", help=_EMBED_HELP)

    p = sub.add_parser(
        "export", parents=[common], help="write a stored video's transcript (JSON, SRT, WebVTT)"
    )
    p.add_argument("video_id")
    p.add_argument("--format", choices=FORMATS, default="json")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")

    p = sub.add_parser(
        "speakers",
        parents=[common],
        help="list the voices; name an anonymous one or merge two (speakers name unknown-3 'Jane Doe')",
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=SPEAKER_ACTIONS,
        default="list",
        help="list (default); name LABEL NAME: an anonymous voice becomes an enrolled one;"
        " merge KEEP GONE: two labels of one person become KEEP",
    )
    p.add_argument("voices", nargs="*", metavar="VOICE", help="name: LABEL NAME; merge: KEEP GONE")
    p.add_argument(
        "--channel", metavar="URL", help="the channel of the anonymous voice (its labels are per channel)"
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")

    _upgrade_commands(sub, common, ytdlp)
    _cluster_commands(sub, common, ytdlp)

    p = sub.add_parser("top", help="watch a running stream's live view (stream --metrics-port)")
    p.add_argument("--database", action="store_true", help="the cluster's view, read from its database")
    p.add_argument("--database-url", help="the cluster's database (DATABASE_URL; default: `db start`'s)")
    p.add_argument("--home", type=Path, help="data folder (YTINGEST_HOME)")
    p.add_argument("--port", type=int, default=9464, help="the stream's --metrics-port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--once", action="store_true", help="print one frame and exit")
    p.add_argument("--log-format", choices=["json", "console", "auto"], default="auto")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="warning")

    p = sub.add_parser(
        "doctor", parents=[common, ytdlp], help="check what a first run needs and say what to fix"
    )
    p.add_argument("--json", action="store_true", help="print the checks as one JSON object")
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
    "speakers",
    "mode",
    "asr_batching",
    "asr_batch_size",
    "cookies_file",
    "cookies_from_browser",
    "js_runtime",
    "tabs",
    "worker_name",
)


def _listing_flags(p: argparse.ArgumentParser) -> None:
    """What a channel's listing selects (stream, enqueue)."""
    p.add_argument("url")
    p.add_argument("--limit", type=int, help="only the first N videos of the listing (newest first)")
    p.add_argument("--skip-shorts", action="store_true", help="skip videos under 60 s and /shorts/")
    p.add_argument(
        "--tabs", help="tabs of a bare channel URL to list, in order (TABS; default videos,streams)"
    )
    p.add_argument("--since", type=_day, help="only videos uploaded on or after: YYYY-MM-DD or 7d, 2w, 3m")
    p.add_argument("--until", type=_day, help="only videos uploaded on or before: YYYY-MM-DD or 7d, 2w, 3m")
    p.add_argument(
        "--new-only", action="store_true", help="stop listing after NEW_ONLY_STREAK stored videos in a row"
    )


_EMBED_HELP = "the embedding model whose vectors are searched (EMBED_MODEL; default: bundled)"


def _upgrade_commands(sub: Any, common: argparse.ArgumentParser, ytdlp: argparse.ArgumentParser) -> None:
    """``reprocess`` and ``delete`` (docs/UPGRADES.md)."""
    p = sub.add_parser(
        "reprocess",
        parents=[common, ytdlp],
        help="re-transcribe stored videos with an ASR model, or only re-embed them with another embedder",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--video", metavar="ID", help="one stored video")
    which.add_argument("--channel", metavar="URL", help="every stored video of a channel")
    which.add_argument("--all", action="store_true", help="every stored video")
    p.add_argument(
        "--asr-model", help="re-transcribe with this ASR model (from kept audio, else a new download)"
    )
    p.add_argument("--embed-model", help="embed with this model; alone: re-embed only, no ASR")
    p.add_argument(
        "--keep-audio", action="store_true", default=None, help="keep the audio (KEEP_AUDIO; else removed)"
    )
    p.add_argument("--json", action="store_true", help="print the outcome as one JSON object")

    p = sub.add_parser(
        "delete", parents=[common], help="remove stored videos: rows, ledger entries, kept audio, voices"
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--video", metavar="ID", help="one video")
    which.add_argument("--channel", metavar="URL", help="every video of a channel, and the channel")
    p.add_argument("--json", action="store_true", help="print what was removed as one JSON object")


def _cluster_commands(sub: Any, common: argparse.ArgumentParser, ytdlp: argparse.ArgumentParser) -> None:
    """db, enqueue, worker, workers: many workers on many machines share one database."""
    p = sub.add_parser("db", parents=[common], help="the embedded PostgreSQL as a server for workers")
    p.add_argument("action", choices=["start", "stop", "url"])
    p.add_argument("--port", type=int, help="TCP port (start; default: a free one)")
    p.add_argument("--listen", default="127.0.0.1", help="address to listen on (start; 0.0.0.0: all)")

    p = sub.add_parser("enqueue", parents=[common, ytdlp], help="list a channel and queue it for workers")
    _listing_flags(p)
    p.add_argument("--json", action="store_true", help="print the counts as one JSON object")

    p = sub.add_parser("worker", parents=[common, ytdlp], help="process queued videos; many per database")
    p.add_argument("--until-empty", action="store_true", help="exit once no job is left in the queue")
    p.add_argument("--gpu", help="the GPU (nvidia-smi's index or a UUID; sets CUDA_VISIBLE_DEVICES)")
    p.add_argument("--name", dest="worker_name", help="this worker's name (default: <host>-<pid>)")
    _speaker_flags(p)
    p.add_argument("--io-workers", type=int, help="concurrent downloads here (IO_WORKERS)")
    p.add_argument("--asr-model", help="faster-whisper size name or model folder (ASR_MODEL)")
    p.add_argument("--metrics-port", type=int, help="serve /metrics and /status on 127.0.0.1:PORT")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    p = sub.add_parser("workers", parents=[common], help="the cluster's workers and its totals")
    p.add_argument("--json", action="store_true", help="print them as one JSON object")


def _speaker_flags(p: argparse.ArgumentParser) -> None:
    """The speaker options of the commands that transcribe (stream, retry)."""
    p.add_argument(
        "--voices-dir", type=Path, help="voices to enrol by name (VOICES_DIR); other voices get unknown-N"
    )
    p.add_argument(
        "--no-speakers",
        dest="speakers",
        action="store_false",
        default=None,
        help="no speaker labels, no speaker model (SPEAKERS=false)",
    )


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment and .env first, then any flag the user gave."""
    overrides: dict[str, Any] = {
        k: getattr(args, k) for k in _SETTING_FLAGS if getattr(args, k, None) is not None
    }
    if getattr(args, "speakers", None) is False and getattr(args, "voices_dir", None) is not None:
        raise ConfigError("--voices-dir and --no-speakers together: the voices would never be used")
    if getattr(args, "home", None) is not None:
        overrides["ytingest_home"] = args.home
    if getattr(args, "ytdlp_arg", None):  # the flags replace YTDLP_ARGS
        overrides["ytdlp_args"] = shlex.join(args.ytdlp_arg)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None


def _day(value: str) -> date:
    """``parse_day`` for argparse: a bad date is a usage error (exit 2) with one line."""
    try:
        return parse_day(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(value: str) -> int:
    """A TCP port for argparse, 0 (any free one) to 65535: anything else is a usage error (exit 2)."""
    if not value.strip().isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {value!r} (0 to 65535)")
    return int(value)
