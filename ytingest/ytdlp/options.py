"""The options every yt-dlp child gets: the JS runtime, cookies, and the user's extra options.

Never logged: the command line holds cookie paths and may hold a proxy password.

``YTDLP_ARGS`` is checked against an **allow-list**, not a deny-list: yt-dlp has some 300 options
and gains more each release, and many of them write files (``--write-*``, ``--print-to-file``,
``--download-archive``, ``--cache-dir``), run commands (``--exec``, ``--netrc-cmd``), move the
output (``-o``, ``-P``), change what is downloaded (``-f``, ``-x``, postprocessors) or read
more options from elsewhere (``--config-locations``, ``--batch-file``). A deny-list would have
to follow every release to stay safe; an allow-list only misses a useful option until someone
adds it. What is allowed is what a run against YouTube needs: network (proxy, source address,
impersonation, headers), pacing (sleep intervals, rate limits), YouTube's extractor arguments
(``EXTRACTOR_ARGS``: ``innertube_host`` would send the cookie-derived Authorization header to any
host; any PO token provider's ``youtubepot-*`` arguments, whose ``base_url`` must be a loopback URL
unless PO_TOKEN_REMOTE_OK=true, since the provider sends it the proxy URL), and an audio-only
format selection. Cookies, the JS runtime and plugins have settings of their own. Not allowed:
``--remote-components`` (it fetches JavaScript from the network and runs it), ``--plugin-dirs``.

Plugins (``ytdlp_plugins``): a child loads the ones installed for the Python that runs yt-dlp
(pip-installed, e.g. a PO token provider) and those in YTDLP_PLUGIN_DIRS; plugins in the user's
own yt-dlp folders (``~/.config/yt-dlp/plugins``, ...) only with YTDLP_USER_PLUGINS=true, as yt-dlp's
config files there stay ignored (``--ignore-config``).

Cookies: yt-dlp rewrites its ``--cookies`` file when it exits (``open(path, 'w')``, truncating it
first), so IO_WORKERS children sharing one file race on it, and a read-only file makes the save
fail. The invocation names the user's file; ``private_cookies`` gives each child its own copy
(0600, in the child's scratch folder, gone with it), so the user's file is only ever read.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from ytingest.config import Settings
from ytingest.errors import ConfigError
from ytingest.ytdlp.plugins import plugin_args

JS_RUNTIMES = ("deno", "node", "quickjs", "bun")  # yt-dlp's supported runtimes (--js-runtimes)

# option → how many values it takes (short forms as yt-dlp spells them)
ALLOWED: dict[str, int] = {
    "--proxy": 1,
    "--socket-timeout": 1,
    "--source-address": 1,
    "-4": 0,
    "--force-ipv4": 0,
    "-6": 0,
    "--force-ipv6": 0,
    "--impersonate": 1,
    "--geo-verification-proxy": 1,
    "--xff": 1,
    "--geo-bypass": 0,
    "--no-geo-bypass": 0,
    "--geo-bypass-country": 1,
    "--geo-bypass-ip-block": 1,
    "--sleep-requests": 1,
    "--sleep-interval": 1,
    "--min-sleep-interval": 1,
    "--max-sleep-interval": 1,
    "-t": 1,  # only ``-t sleep``, the preset yt-dlp recommends against "try again later"
    "--preset-alias": 1,
    "-r": 1,
    "--limit-rate": 1,
    "--throttled-rate": 1,
    "--http-chunk-size": 1,
    "-N": 1,
    "--concurrent-fragments": 1,
    "--extractor-args": 1,  # only EXTRACTOR_ARGS
    "--no-remote-components": 0,
    "--user-agent": 1,
    "--referer": 1,
    "--add-headers": 1,
    "--no-check-certificates": 0,
    "--legacy-server-connect": 0,
    "--prefer-insecure": 0,
    "-f": 1,
    "--format": 1,
    "-S": 1,
    "--format-sort": 1,
    "--format-sort-force": 0,
    "--no-format-sort-force": 0,
}
_FORMAT = ("-f", "--format")
# the options of ytdlp_invocation's own that take a value (for reading an invocation back)
_OWN: dict[str, int] = {"--js-runtimes": 1, "--cookies": 1, "--cookies-from-browser": 1, "--plugin-dirs": 1}
# extractor → the keys YTDLP_ARGS may set (yt-dlp's README "EXTRACTOR ARGUMENTS"; the names as
# extractor/youtube/*.py reads them). Not innertube_host/innertube_key: a host of the user's choice
# would get the Authorization header that yt-dlp derives from the cookies. Not youtube-ejs's repo and
# dev (jsc/_builtin/ejs.py): where the challenge JavaScript comes from, and its version check.
# A ``youtubepot-PROVIDER`` namespace (pot/_director.py's EXTRACTOR_ARG_PREFIX plus the provider's
# key) takes any key: each provider defines its own (checked in _check_extractor_args).
EXTRACTOR_ARGS: dict[str, frozenset[str]] = {
    "youtube": frozenset(
        {
            "player_client",
            "player_skip",
            "webpage_client",
            "formats",
            "pot_trace",
            "webpage_skip",
            "skip",
            "lang",
            "po_token",
            "visitor_data",
            "data_sync_id",
            "fetch_pot",
            "player_js_variant",
            "player_js_version",
        }
    ),
    "youtubetab": frozenset({"skip", "approximate_date"}),
    "youtube-ejs": frozenset({"jitless", "script_version"}),
}
_POT_PROVIDER = re.compile(r"youtubepot-[a-z0-9_]+")  # any provider's namespace (lower-cased)
# why the most likely refusals are refused (anything else not allowed gets the generic line)
_WHY = {
    **dict.fromkeys(
        ("-o", "--output", "-P", "--paths", "--output-na-placeholder"), "ytingest decides where audio goes"
    ),
    **dict.fromkeys(("--exec", "--exec-before-download", "--netrc-cmd"), "it runs commands"),
    **dict.fromkeys(
        ("--cookies", "--cookies-from-browser"), "use --cookies FILE / COOKIES_FILE or --cookies-from-browser"
    ),
    **dict.fromkeys(("--js-runtimes", "--no-js-runtimes"), "use --js-runtime / JS_RUNTIME"),
    **dict.fromkeys(
        ("-x", "--extract-audio", "--remux-video", "--recode-video", "--postprocessor-args", "--ppa"),
        "ytingest keeps the audio as downloaded",
    ),
    **dict.fromkeys(
        ("-a", "--batch-file", "--config-location", "--config-locations", "--load-info-json"),
        "it reads options or URLs from a file",
    ),
    **dict.fromkeys(
        ("-v", "--verbose", "--print-traffic", "--dump-pages"), "it would echo cookies into the logs"
    ),
    **dict.fromkeys(("--remote-components",), "it fetches JavaScript from the network and runs it"),
    **dict.fromkeys(
        ("--plugin-dirs", "--no-plugin-dirs"), "use YTDLP_PLUGIN_DIRS (and YTDLP_USER_PLUGINS=true)"
    ),
}
# ``ba*``/``bestaudio*`` are "the best format that contains audio": it may carry video too
_AUDIO_ONLY = re.compile(r"(?:bestaudio|ba|worstaudio|wa)(?:\[[^\]]*\])*")
_SECRET_HEADERS = ("cookie", "authorization", "proxy-authorization")


def ytdlp_invocation(settings: Settings) -> tuple[str, ...]:
    """``yt-dlp`` and the options common to listing and downloading.

    ``--ignore-config``: a user's yt-dlp config file could set an output path or ``--exec``,
    the very options ``YTDLP_ARGS`` refuses. Raises ConfigError (a one-line message that never
    echoes a cookie path or a proxy password) for a bad runtime, cookies file or option.
    """
    args = [
        *settings.ytdlp_command,
        "--ignore-config",
        *plugin_args(settings),
        *js_runtime_args(settings.js_runtime),
    ]
    if settings.cookies_file is not None:
        if not os.access(settings.cookies_file, os.R_OK) or not Path(settings.cookies_file).is_file():
            raise ConfigError("the cookies file (--cookies / COOKIES_FILE) does not exist or cannot be read")
        args += ["--cookies", str(settings.cookies_file)]
    if settings.cookies_from_browser:
        args += ["--cookies-from-browser", settings.cookies_from_browser]
    args += checked_ytdlp_args(settings.ytdlp_args, remote_pot_ok=settings.po_token_remote_ok)
    return tuple(args)


def bundled_deno() -> str | None:
    """The deno binary installed with ytingest (the ``deno`` package), else one next to the
    Python running us (``.venv/bin`` or ``.venv\\Scripts``); None when neither exists."""
    try:
        from deno import find_deno_bin  # type: ignore[import-untyped]

        return str(Path(find_deno_bin()).resolve())
    except (ImportError, OSError):
        pass
    name = "deno.exe" if sys.platform == "win32" else "deno"
    beside = Path(sys.executable).parent / name
    return str(beside.resolve()) if beside.is_file() else None


def js_runtime_args(choice: str | None) -> list[str]:
    """``--no-js-runtimes --js-runtimes RUNTIME[:PATH]`` for ``JS_RUNTIME`` (None: the bundled
    deno; ``none``: no runtime at all). Clearing first makes the choice exact: yt-dlp would
    otherwise prefer a deno found on PATH over a configured node."""
    if choice is None or not choice.strip():
        deno = bundled_deno()
        return ["--no-js-runtimes", "--js-runtimes", f"deno:{deno}"] if deno else []
    choice = choice.strip()
    if choice.lower() == "none":
        return ["--no-js-runtimes"]
    name, _, path = choice.partition(":")
    if name.lower() not in JS_RUNTIMES:
        raise ConfigError(f"JS_RUNTIME: unknown runtime {name!r} (one of {', '.join(JS_RUNTIMES)}, or none)")
    if path:
        if not Path(path).exists():
            raise ConfigError(f"JS_RUNTIME: {path} does not exist")
        path = str(Path(path).resolve())
    return ["--no-js-runtimes", "--js-runtimes", f"{name.lower()}:{path}" if path else name.lower()]


def checked_ytdlp_args(raw: str, *, remote_pot_ok: bool = False) -> list[str]:
    """``YTDLP_ARGS`` split like a shell would (no shell), each option checked against ALLOWED.

    Both ``--opt value`` and ``--opt=value`` (and ``-r50K``) are read. Raises ConfigError naming
    the option (never its value: it may be a proxy URL with a password). ``remote_pot_ok``: a PO
    token provider's ``base_url`` may be another host than this one.
    """
    try:
        tokens = shlex.split(raw, posix=True)
    except ValueError as exc:
        raise ConfigError(f"YTDLP_ARGS: cannot split ({exc})") from None
    out: list[str] = []
    for name, value in _options(tokens, ALLOWED):
        if name is None:
            raise ConfigError(
                f"YTDLP_ARGS: unexpected {str(value)[:40]!r} (only options; the URL comes from the command)"
            )
        if name not in ALLOWED:
            why = _WHY.get(name, "not on ytingest's list of options that keep the download contract")
            raise ConfigError(f"YTDLP_ARGS: {name} is not allowed: {why}")
        if ALLOWED[name] == 0:
            if value is not None:
                raise ConfigError(f"YTDLP_ARGS: {name} takes no value")
            out.append(name)
            continue
        if value is None:
            raise ConfigError(f"YTDLP_ARGS: {name} needs a value")
        _check_value(name, value, remote_pot_ok)
        out += [name, value]
    return out


def _options(tokens: Sequence[str], arity: dict[str, int]) -> Iterator[tuple[str | None, str | None]]:
    """``(option, value)`` pairs as yt-dlp reads ``tokens`` (see ``_spans``)."""
    for _, _, name, value in _spans(tokens, arity):
        yield name, value


def _spans(tokens: Sequence[str], arity: dict[str, int]) -> Iterator[tuple[int, int, str | None, str | None]]:
    """``(start, stop, option, value)`` for each option in ``tokens``: an option of ``arity`` 1 takes
    the next token as its value (even one that starts with a dash) unless attached (``--opt=v``,
    ``-r50K``); one of arity 0 or unknown, an attached value if any. ``(…, None, token)`` for a
    non-option; a missing last value reads as None."""
    i = 0
    while i < len(tokens):
        start, token = i, tokens[i]
        i += 1
        name, value = _split_option(token)
        if name is None:
            yield start, i, None, token
            continue
        if value is None and arity.get(name) == 1 and i < len(tokens):
            value = tokens[i]
            i += 1
        yield start, i, name, value


def _split_option(token: str) -> tuple[str | None, str | None]:
    """``(option, attached value)``; ``(None, None)`` for a token that is not an option."""
    if token.startswith("--"):
        name, eq, value = token.partition("=")
        return name, value if eq else None
    if token.startswith("-") and len(token) >= 2 and token != "-":
        short, rest = token[:2], token[2:]
        if rest and ALLOWED.get(short) == 1:
            return short, rest.removeprefix("=")
        return token if not rest else short + rest, None
    return None, None


def _check_value(name: str, value: str, remote_pot_ok: bool = False) -> None:
    if name in _FORMAT and not is_audio_only(value):
        raise ConfigError(
            f"YTDLP_ARGS: {name} {value!r} is not an audio-only selection (e.g. bestaudio[ext=m4a]/bestaudio)"
        )
    if name in ("-t", "--preset-alias") and value != "sleep":
        raise ConfigError(f"YTDLP_ARGS: {name} {value!r} is not allowed: only the 'sleep' preset")
    if name == "--add-headers" and value.split(":", 1)[0].strip().lower() in _SECRET_HEADERS:
        raise ConfigError(
            "YTDLP_ARGS: --add-headers may not carry Cookie, Authorization or Proxy-Authorization:"
            " use --cookies FILE (a proxy's password goes in --proxy's URL)"
        )
    if name == "--extractor-args":
        _check_extractor_args(value, remote_pot_ok)


def _check_extractor_args(value: str, remote_pot_ok: bool = False) -> None:
    """``IE_KEY:KEY=V,V;KEY2=V`` read as yt-dlp reads it (keys lower-cased, ``-`` as ``_``): only
    EXTRACTOR_ARGS, or any key of a ``youtubepot-*`` provider, whose ``base_url`` values must be
    loopback URLs unless ``remote_pot_ok``. The message names the extractor and key, never a value
    (a po_token, a URL with a password)."""
    extractor, colon, args = value.partition(":")
    extractor = extractor.strip().lower()
    provider = _POT_PROVIDER.fullmatch(extractor) is not None
    if not colon or not (provider or extractor in EXTRACTOR_ARGS):
        raise ConfigError(
            f"YTDLP_ARGS: --extractor-args is allowed for {', '.join(EXTRACTOR_ARGS)} and youtubepot-*"
            " only (youtube:KEY=VALUE;KEY=VALUE)"
        )
    allowed = EXTRACTOR_ARGS.get(extractor, frozenset())
    for arg in args.split(";"):
        key, _, values = arg.partition("=")
        key = key.strip().lower().replace("-", "_")
        if key and not provider and key not in allowed:
            shown = key if re.fullmatch(r"[a-z0-9_]{1,40}", key) else "KEY"  # "KEY" may be a value (no "=")
            raise ConfigError(
                f"YTDLP_ARGS: --extractor-args {extractor}:{shown} is not allowed"
                f" (allowed keys: {', '.join(sorted(allowed))})"
            )
        if provider and key == "base_url" and not remote_pot_ok:
            for url in re.split(r"(?<!\\),", values):
                if not is_loopback_url(url.replace(r"\,", ",").strip()):
                    raise ConfigError(
                        f"YTDLP_ARGS: --extractor-args {extractor}:base_url must be a loopback URL"
                        " (http://127.0.0.1:PORT, [::1] or localhost): the provider is sent the proxy"
                        " URL; PO_TOKEN_REMOTE_OK=true allows another host"
                    )


def is_loopback_url(url: str) -> bool:
    """An http(s) URL whose host is this machine: 127.0.0.0/8, ::1 or ``localhost``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (a bad port raises ValueError)
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_audio_only(selection: str) -> bool:
    """A format selection whose every alternative is audio-only (``bestaudio``/``ba``/
    ``worstaudio``/``wa`` with filters), with ``best`` allowed as the last fallback, as
    ytingest's own ``bestaudio/best``; merges (``+``) and video selections are not."""
    parts = [p.strip() for p in selection.split("/")]
    if not parts or not all(parts):
        return False
    *firsts, last = parts
    return all(_AUDIO_ONLY.fullmatch(p) for p in firsts) and (
        _AUDIO_ONLY.fullmatch(last) is not None or (bool(firsts) and last in ("best", "b"))
    )


def format_given(args: Sequence[str]) -> bool:
    """True when the invocation already holds a (checked, audio-only) ``-f`` selection: an option
    read as yt-dlp reads it, not a value that looks like one (``--user-agent -fx``)."""
    return any(name in _FORMAT for name, _ in _options(args, {**ALLOWED, **_OWN}))


def with_extractor_arg(args: Sequence[str], extractor: str, arg: str) -> list[str]:
    """``args`` plus ``--extractor-args EXTRACTOR:ARG``, merged into the user's own argument for that
    extractor when there is one: yt-dlp keeps only the last ``--extractor-args`` per extractor."""
    out = list(args)
    given = [
        (start, stop, value)
        for start, stop, name, value in _spans(out, {**ALLOWED, **_OWN})
        if name == "--extractor-args" and value and value.partition(":")[0].strip().lower() == extractor
    ]
    if not given:
        return [*out, "--extractor-args", f"{extractor}:{arg}"]
    start, stop, value = given[-1]  # the one yt-dlp uses
    out[start:stop] = ["--extractor-args", f"{value.rstrip(';')};{arg}"]
    return out


def private_cookies(args: Sequence[str], folder: Path) -> list[str]:
    """``args`` with each ``--cookies`` file replaced by a private copy in ``folder`` (0600), for one
    child: yt-dlp rewrites its cookies file at exit, and the user's own file is only ever read."""
    out = list(args)
    spans = [(a, b, v) for a, b, name, v in _spans(out, {**ALLOWED, **_OWN}) if name == "--cookies" and v]
    for n, (start, stop, value) in reversed(list(enumerate(spans))):
        copy = folder / f"cookies-{n}.txt"
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as dst, open(value, "rb") as src:
            shutil.copyfileobj(src, dst)
        out[start:stop] = ["--cookies", str(copy)]
    return out
