"""The command line's arguments: the parser; ``Settings`` from the environment plus the setting
flags (``cli.settings``); a search's and a listing's options as ``SearchQuery`` and ``Listing``."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ytingest.cli.settings import COMMON, SETTING_FLAGS, setting_parents, settings_from
from ytingest.doctor.probes import installed_version
from ytingest.errors import ConfigError
from ytingest.export import FORMATS
from ytingest.search import SearchQuery, parse_day, query_options
from ytingest.stages.discover import Listing

__all__ = ["SETTING_FLAGS", "build_parser", "listing_from", "parse_args", "query_from", "settings_from"]

DESCRIPTION = "YouTube channels → searchable, speaker-attributed transcripts in PostgreSQL + pgvector."
EPILOG = "'ytingest COMMAND --help' lists a command's options; 'ytingest doctor' checks the setup."


LOG_LEVELS = ("debug", "info", "warning", "error")
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
    flags = setting_parents()  # each setting flag once; a command names the ones it takes

    def take(*names: str) -> list[argparse.ArgumentParser]:
        return [flags[name] for name in names]

    logging_flags = argparse.ArgumentParser(add_help=False)
    g = logging_flags.add_argument_group(COMMON)
    g.add_argument("--log-format", choices=["json", "console", "auto"], default="auto", help="default: auto")
    g.add_argument("--log-level", choices=LOG_LEVELS, help="default: info (top: warning)")
    common = argparse.ArgumentParser(
        add_help=False, parents=[*take("ytingest_home", "database_url"), logging_flags]
    )
    ytdlp = argparse.ArgumentParser(  # for the commands that run yt-dlp, and doctor
        add_help=False, parents=take("cookies_file", "cookies_from_browser", "ytdlp_args", "js_runtime")
    )
    groups = Parents(
        common=common,
        ytdlp=ytdlp,
        speakers=take("voices_dir", "speakers", "speaker_backend"),
        asr=take("asr_backend", "asr_model"),
        embed=take("embed_backend", "embed_model"),
        flags=flags,
    )

    parser = argparse.ArgumentParser(prog="ytingest", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=version_line())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    run = ("keep_audio", "io_workers", "asr_workers", "batch_size", "encode_batch_size", "db_workers")
    p = sub.add_parser(
        "stream",
        parents=[
            common,
            ytdlp,
            _listing_parent(flags["tabs"]),
            *groups.speakers,
            *take(*run),
            *groups.asr,
            *groups.embed,
            *take("autotune", "metrics_port", "mode", "asr_batching", "asr_batch_size"),
        ],
        help="ingest a channel's videos (anything yt-dlp lists)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument(
        "--dashboard",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live view on the terminal (default: on when stderr is a terminal and not --json)",
    )
    p.add_argument("--report", type=Path, help="write the run's timeline to this HTML file")

    p = sub.add_parser("retry", parents=[common, ytdlp, *groups.speakers], help="try the failed videos again")
    p.add_argument("--failed", action="store_true", default=True, help="re-queue failed videos (default)")
    p.add_argument("--pending", action="store_true", help="also videos a stopped run left pending")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    p = sub.add_parser("status", parents=[common], help="videos done, failed and pending; why each failed")
    p.add_argument("--channel", help="only the videos of this channel URL")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")

    p = sub.add_parser(
        "channels", parents=[common], help="each channel: videos done, failed, pending; hours; last run"
    )
    p.add_argument("--json", action="store_true", help="print the channels as one JSON array")

    p = sub.add_parser(
        "search", parents=[common, *groups.embed], help="find segments by meaning and by words"
    )
    _search_flags(p)
    p.add_argument("--group", action="store_true", help="group hits by video, best video first")
    p.add_argument("--json", action="store_true", help="print the hits as one JSON array")

    p = sub.add_parser(
        "serve",
        parents=[common, *groups.embed],
        help="the search page, a live run page and a JSON API",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--run-url", help="a running stream's --metrics-port address, for the run page")

    p = sub.add_parser(
        "mcp",
        parents=[common, *groups.embed],
        help="the database as a read-only MCP server for LLM clients (stdio)",
    )
    p.add_argument("--http", action="store_true", help="streamable HTTP at http://HOST:PORT/mcp, not stdio")
    p.add_argument("--host", default="127.0.0.1", help="address to bind with --http (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8766, help="port with --http (default: 8766; 0: any free)")

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

    _upgrade_commands(sub, groups)
    _cluster_commands(sub, groups)

    p = sub.add_parser(
        "top", parents=[common], help="watch a running stream's live view (stream --metrics-port)"
    )
    p.add_argument("--database", action="store_true", help="the cluster's view, read from its database")
    p.add_argument("--port", type=int, default=9464, help="the stream's --metrics-port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--once", action="store_true", help="print one frame and exit")

    p = sub.add_parser(
        "doctor", parents=[common, ytdlp], help="check what a first run needs and say what to fix"
    )
    p.add_argument("--json", action="store_true", help="print the checks as one JSON object")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``build_parser().parse_args``, with the log level that depends on the command filled in."""
    args = build_parser().parse_args(argv)
    if args.log_level is None:
        args.log_level = "warning" if args.command == "top" else "info"
    return args


@dataclass(frozen=True, slots=True)
class Parents:
    """The parent parsers that several commands share."""

    common: argparse.ArgumentParser
    ytdlp: argparse.ArgumentParser
    speakers: list[argparse.ArgumentParser]
    asr: list[argparse.ArgumentParser]
    embed: list[argparse.ArgumentParser]
    flags: dict[str, argparse.ArgumentParser]  # every setting flag's own parent, by field name


def _listing_parent(tabs: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """What a channel's listing selects (stream, enqueue): ``Listing``'s fields (``listing_from``)."""
    p = argparse.ArgumentParser(add_help=False, parents=[tabs])
    p.add_argument("url")
    p.add_argument("--limit", type=int, help="only the first N videos of the listing (newest first)")
    p.add_argument("--skip-shorts", action="store_true", help="skip videos under 60 s and /shorts/")
    day = _cli_type(parse_day)
    p.add_argument("--since", type=day, help="only videos uploaded on or after: YYYY-MM-DD or 7d, 2w, 3m")
    p.add_argument("--until", type=day, help="only videos uploaded on or before: YYYY-MM-DD or 7d, 2w, 3m")
    p.add_argument(
        "--new-only", action="store_true", help="stop listing after NEW_ONLY_STREAK stored videos in a row"
    )
    return p


def listing_from(args: argparse.Namespace) -> dict[str, Any]:
    """The listing flags as ``Listing``'s fields: what ``stream`` and ``enqueue`` both pass on."""
    return {f.name: getattr(args, f.name) for f in fields(Listing)}


def _search_flags(p: argparse.ArgumentParser) -> None:
    """``search QUERY`` and ``SearchQuery``'s options (``query_options``: the web's parameters too),
    each parsed by its option's own parser; a bad value is a usage error (exit 2)."""
    p.add_argument("query", help='words, "an exact phrase", -excluded')
    defaults = {f.name: f.default for f in fields(SearchQuery)}
    for name, option in query_options().items():
        shown = f" (default: {defaults[name]})" if defaults[name] is not None else ""
        parse: dict[str, Any] = {} if option.parse is str else {"type": _cli_type(option.parse)}
        p.add_argument(
            "--" + name.replace("_", "-"),
            dest=f"search_{name}",  # not ``mode``: that is the stream's MODE setting
            choices=option.choices or None,
            metavar=None if option.choices else name.upper(),
            help=option.help + shown,
            **parse,
        )


def query_from(args: argparse.Namespace, *, embed_model: str | None) -> SearchQuery:
    """The ``SearchQuery`` of ``search``'s arguments; unset options keep ``SearchQuery``'s defaults."""
    given = {name: getattr(args, f"search_{name}") for name in query_options()}
    return SearchQuery(
        args.query, embed_model=embed_model, **{k: v for k, v in given.items() if v is not None}
    )


def _upgrade_commands(sub: Any, groups: Parents) -> None:
    """``reprocess`` and ``delete`` (docs/UPGRADES.md)."""
    p = sub.add_parser(
        "reprocess",
        parents=[groups.common, groups.ytdlp, *groups.asr, *groups.embed, groups.flags["keep_audio"]],
        help="re-transcribe stored videos with an ASR model, or only re-embed them with another embedder",
        description="--asr-model: re-transcribe (from kept audio, else a new download; the audio is"
        " removed after unless --keep-audio); --embed-model alone: re-embed the stored text only, no ASR",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--video", metavar="ID", help="one stored video")
    which.add_argument("--channel", metavar="URL", help="every stored video of a channel")
    which.add_argument("--all", action="store_true", help="every stored video")
    p.add_argument("--json", action="store_true", help="print the outcome as one JSON object")

    p = sub.add_parser(
        "delete",
        parents=[groups.common],
        help="remove stored videos: rows, ledger entries, kept audio, voices",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--video", metavar="ID", help="one video")
    which.add_argument("--channel", metavar="URL", help="every video of a channel, and the channel")
    p.add_argument("--json", action="store_true", help="print what was removed as one JSON object")


def _cluster_commands(sub: Any, groups: Parents) -> None:
    """db, enqueue, worker, workers: many workers on many machines share one database."""
    common, flags = groups.common, groups.flags
    p = sub.add_parser("db", parents=[common], help="the embedded PostgreSQL as a server for workers")
    p.add_argument("action", choices=["start", "stop", "url"])
    p.add_argument("--port", type=int, help="TCP port (start; default: a free one)")
    p.add_argument("--listen", default="127.0.0.1", help="address to listen on (start; 0.0.0.0: all)")

    p = sub.add_parser(
        "enqueue",
        parents=[common, groups.ytdlp, _listing_parent(flags["tabs"])],
        help="list a channel and queue it for workers",
    )
    p.add_argument("--json", action="store_true", help="print the counts as one JSON object")

    p = sub.add_parser(
        "worker",
        parents=[
            common,
            groups.ytdlp,
            flags["worker_name"],
            *groups.speakers,
            flags["io_workers"],
            *groups.asr,
            flags["metrics_port"],
        ],
        help="process queued videos; many per database",
    )
    p.add_argument("--until-empty", action="store_true", help="exit once no job is left in the queue")
    p.add_argument("--gpu", help="the GPU (nvidia-smi's index or a UUID; sets CUDA_VISIBLE_DEVICES)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    p = sub.add_parser("workers", parents=[common], help="the cluster's workers and its totals")
    p.add_argument("--json", action="store_true", help="print them as one JSON object")


def _cli_type(parse: Callable[[str], object]) -> Callable[[str], object]:
    """``parse`` for argparse: its ``ConfigError`` is a usage error (exit 2) with one line."""

    def convert(value: str) -> object:
        try:
            return parse(value)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


def _port(value: str) -> int:
    """A TCP port for argparse, 0 (any free one) to 65535: anything else is a usage error (exit 2)."""
    if not value.strip().isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {value!r} (0 to 65535)")
    return int(value)
