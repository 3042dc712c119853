"""The doctor's look at yt-dlp's plugins and PO token providers, and at the yt-dlp-ejs it wants.

Plugins: the yt-dlp child with the plugin options of every run, ``-v --simulate`` on a YouTube
watch URL, and ``--proxy`` to a loopback port that is bound and not listening: the YouTube
extractor initialises its PO token director (which prints the providers) before its first
request, and that request is refused on this machine, so nothing leaves it. No cookies are
given, and of the verbose output only four lines are read (the first echoes the command line):
``Extractor Plugins``, ``Post-Processor Plugins`` and ``Plugin directories`` (YoutubeDL.py's
debug header) and ``[youtube] [pot] PO Token Providers`` (pot/_director.py). Nothing else is shown.

Whether a provider answers: an HTTP provider's ``base_url`` (YTDLP_ARGS'
``youtubepot-KEY:base_url``, else bgutil's default ``http://127.0.0.1:4416``) gets ``GET /ping``
(bgutil's server answers ``{"version": ...}``), loopback only, with a short timeout.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, requires
from urllib.parse import urlsplit

from ytingest.config import Settings
from ytingest.doctor.checks import Check
from ytingest.doctor.probes import run_child
from ytingest.errors import ConfigError
from ytingest.ytdlp.options import ALLOWED, checked_ytdlp_args, is_loopback_url
from ytingest.ytdlp.plugins import plugin_args, user_plugin_folders

PROBE_URL = "https://www.youtube.com/watch?v=aqz-KE-bpKQ"  # any watch URL: it is never fetched
BGUTIL_HTTP = ("bgutilhttp", "http://127.0.0.1:4416")  # the bgutil HTTP provider's key and default
_LINES = {
    "extractors": re.compile(r"^\[debug\] Extractor Plugins: (.*)$", re.M),
    "postprocessors": re.compile(r"^\[debug\] Post-Processor Plugins: (.*)$", re.M),
    "directories": re.compile(r"^\[debug\] Plugin directories: (.*)$", re.M),
    "providers": re.compile(r"^\[debug\] \[youtube\] \[pot\] PO Token Providers: (.*)$", re.M),
}
_POT_FIX = (
    "see docs/youtube.md 'Plugins and PO tokens': pip install bgutil-ytdlp-pot-provider, and run its server"
)


@dataclass(frozen=True, slots=True)
class Plugins:
    """What yt-dlp's verbose output says it loaded; None for a line it did not print."""

    extractors: tuple[str, ...] = ()
    postprocessors: tuple[str, ...] = ()
    directories: tuple[str, ...] | None = None  # () when none were found or plugins are off
    providers: tuple[str, ...] | None = None  # e.g. ``bgutil:http-1.2.2 (external)``


def parse_plugins(output: str) -> Plugins:
    """The four lines of yt-dlp's verbose output that name plugins (and only those)."""

    def items(key: str) -> tuple[str, ...] | None:
        found = _LINES[key].search(output)
        if found is None:
            return None
        value = found.group(1).strip()
        if value.startswith("none"):
            return ()
        return tuple(part.strip() for part in value.split(", ") if part.strip())

    return Plugins(
        extractors=items("extractors") or (),
        postprocessors=items("postprocessors") or (),
        directories=items("directories"),
        providers=items("providers"),
    )


def external_providers(plugins: Plugins) -> tuple[str, ...]:
    """The PO token providers that came from plugins (yt-dlp marks them ``(external)``)."""
    return tuple(p for p in plugins.providers or () if "(external" in p)


def extractor_args(ytdlp_args: str) -> list[str]:
    """The ``--extractor-args`` values of YTDLP_ARGS, checked (a ConfigError as a run would get,
    but any provider host is read here: ``ping`` tries loopback ones only)."""
    checked, out, i = checked_ytdlp_args(ytdlp_args, remote_pot_ok=True), [], 0
    while i < len(checked):  # checked: each option alone or followed by its one value
        if checked[i] == "--extractor-args":
            out.append(checked[i + 1])
        i += 1 + ALLOWED[checked[i]]
    return out


def provider_urls(args: list[str], providers: tuple[str, ...] = ()) -> dict[str, str]:
    """``{provider key: base_url}`` from ``youtubepot-KEY:base_url=`` extractor arguments (the last
    one, its first value, as the provider reads it), plus bgutil's default when its provider is
    loaded without one."""
    urls: dict[str, str] = {}
    for value in args:
        namespace, _, args_ = value.partition(":")
        namespace = namespace.strip().lower()
        if not namespace.startswith("youtubepot-"):
            continue
        for arg in args_.split(";"):
            key, _, values = arg.partition("=")
            if key.strip().lower().replace("-", "_") == "base_url" and values.strip():
                urls[namespace.removeprefix("youtubepot-")] = re.split(r"(?<!\\),", values)[0].strip()
    key, default = BGUTIL_HTTP
    if key not in urls and any(p.startswith("bgutil:http") for p in providers):
        urls[key] = default
    return urls


async def probe_plugins(settings: Settings, timeout_s: float = 60.0) -> tuple[Plugins | None, str]:
    """yt-dlp's own list of loaded plugins and PO token providers, without the network (see the
    module's docstring). Returns (what it printed, "") or (None, why it could not be read)."""
    try:
        given = extractor_args(settings.ytdlp_args)
    except ConfigError as exc:
        return None, str(exc)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))  # held, never listening: a connection to it is refused
        command = [
            *settings.ytdlp_command,
            "--ignore-config",
            *plugin_args(settings),
            "--no-js-runtimes",
            *(a for arg in given for a in ("--extractor-args", arg)),
            "--proxy",
            f"http://127.0.0.1:{closed.getsockname()[1]}",
            "--extractor-retries",
            "0",
            "--socket-timeout",
            "5",
            "-v",
            "--simulate",
            PROBE_URL,
        ]
        try:
            returncode, out = await run_child(command, timeout_s)
        except OSError as exc:
            return None, f"cannot start yt-dlp: {exc.strerror or type(exc).__name__}"
        except TimeoutError:
            return None, f"yt-dlp did not answer within {timeout_s:.0f} s"
    plugins = parse_plugins(out)
    if plugins.directories is None:
        return None, f"yt-dlp exited {returncode} before naming its plugins"
    return plugins, ""


def ping(base_url: str, timeout_s: float = 3.0) -> tuple[bool, str]:
    """``GET {base_url}/ping`` on this machine only (blocking: call it in a thread). Returns
    (answered, what: the server's version or why not), never the URL's user or password."""
    if not is_loopback_url(base_url):
        return False, "not tried: not a loopback URL"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy from the env
    try:
        with opener.open(base_url.rstrip("/") + "/ping", timeout=timeout_s) as response:
            body = response.read(65536)
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, str(getattr(reason, "strerror", None) or type(reason).__name__)
    try:
        version = json.loads(body).get("version")
    except (ValueError, AttributeError):
        return True, "answers, but not with JSON"
    return True, f"server {version}" if version else "answers"


def shown(url: str) -> str:
    """``scheme://host:port`` of a URL: no user, password, path or query."""
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"


def plugins_check(plugins: Plugins | None, why: str, *, user_folders: bool = False) -> Check:
    """What yt-dlp loaded (info), and a hint when the user's own yt-dlp plugin folders are skipped."""
    if plugins is None:
        return Check(
            "plugins", "warn", f"cannot list yt-dlp's plugins: {why}", "check YTDLP_PATH and YTDLP_ARGS"
        )
    names = [*plugins.extractors, *plugins.postprocessors]
    facts = {"ytdlp_plugins": names, "ytdlp_plugin_dirs": list(plugins.directories or ())}
    detail = f"yt-dlp loads {', '.join(names)}" if names else "yt-dlp loads no extractor plugins"
    if plugins.directories:
        detail += f" (from {', '.join(plugins.directories)})"
    fix = ""
    if user_folders:
        detail += "; your own yt-dlp plugin folders are not searched"
        fix = "YTDLP_USER_PLUGINS=true searches them"
    return Check("plugins", "info", detail, fix, facts)


def pot_check(plugins: Plugins | None, answers: dict[str, tuple[str, bool, str]]) -> Check:
    """The PO token providers yt-dlp sees, and whether each HTTP provider's server answers
    (``answers``: provider key → (base_url, answered, what))."""
    providers = external_providers(plugins) if plugins else ()
    facts = {
        "pot_providers": list(providers),
        "pot_servers": {k: {"url": shown(u), "answers": ok} for k, (u, ok, _) in answers.items()},
    }
    servers = "; ".join(
        f"youtubepot-{k} at {shown(u)} {'answers (' + what + ')' if ok else 'does not answer: ' + what}"
        for k, (u, ok, what) in answers.items()
    )
    silent = [k for k, (_, ok, _) in answers.items() if not ok]
    if not providers:
        if answers:  # configured in YTDLP_ARGS, but no provider plugin loaded
            detail = f"no PO token provider plugin loaded, though YTDLP_ARGS configures one; {servers}"
            return Check("po token", "warn", detail, _POT_FIX, facts)
        return Check("po token", "info", "no PO token provider: fine for most channels", _POT_FIX, facts)
    detail = f"providers {', '.join(providers)}" + (f"; {servers}" if servers else "")
    if silent:
        fix = (
            "start the provider's server"
            " (bgutil: docker run -p 4416:4416 brainicism/bgutil-ytdlp-pot-provider)"
        )
        return Check("po token", "warn", detail, fix, facts)
    return Check("po token", "ok", detail, "", facts)


def wanted_ejs() -> str | None:
    """The yt-dlp-ejs version the installed yt-dlp pins (``yt-dlp-ejs==X; extra == 'default'``)."""
    try:
        needs = requires("yt-dlp") or []
    except PackageNotFoundError:
        return None
    for need in needs:
        found = re.match(r"yt-dlp-ejs\s*==\s*([\w.]+)\s*;.*extra\s*==\s*['\"]default['\"]", need)
        if found:
            return found.group(1)
    return None


def ejs_check(wanted: str | None, installed: str | None) -> Check:
    """yt-dlp uses only the ejs scripts whose major.minor match its pin (jsc/_builtin/ejs.py)."""
    facts = {"yt_dlp_ejs_wanted": wanted, "yt_dlp_ejs_installed": installed}
    upgrade = 'pip install -U "yt-dlp[default]" (yt-dlp-ejs moves with it)'
    if installed is None:
        return Check("yt-dlp-ejs", "warn", "yt-dlp-ejs is not installed", upgrade, facts)
    if wanted is None:
        return Check("yt-dlp-ejs", "info", f"yt-dlp-ejs {installed} (yt-dlp names no version)", "", facts)
    if installed.split(".")[:2] != wanted.split(".")[:2]:
        detail = f"yt-dlp wants yt-dlp-ejs {wanted}, {installed} is installed: yt-dlp ignores it"
        return Check("yt-dlp-ejs", "warn", detail, upgrade, facts)
    return Check("yt-dlp-ejs", "ok", f"yt-dlp-ejs {installed} (yt-dlp wants {wanted})", "", facts)


async def plugin_checks(settings: Settings) -> list[Check]:
    """The plugins and PO token checks, against the real yt-dlp child."""
    plugins, why = await probe_plugins(settings)
    try:
        given = extractor_args(settings.ytdlp_args)
    except ConfigError:
        given = []
    urls = provider_urls(given, plugins.providers or () if plugins else ())
    answers: dict[str, tuple[str, bool, str]] = {}
    for key, url in urls.items():
        ok, what = await asyncio.to_thread(ping, url)
        answers[key] = (url, ok, what)
    user = not settings.ytdlp_user_plugins and bool(user_plugin_folders())
    return [plugins_check(plugins, why, user_folders=user), pot_check(plugins, answers)]
