"""The options every yt-dlp child gets: JS runtime, cookies, YTDLP_ARGS checked against an allow-list."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ytingest.config import Settings
from ytingest.errors import ConfigError
from ytingest.logs import redact
from ytingest.ytdlp.options import (
    EXTRACTOR_ARGS,
    bundled_deno,
    checked_ytdlp_args,
    format_given,
    is_audio_only,
    js_runtime_args,
    private_cookies,
    with_extractor_arg,
    ytdlp_invocation,
)


def test_every_child_gets_the_bundled_deno_by_absolute_path() -> None:
    """Default: the deno installed with ytingest, absolute, after clearing yt-dlp's defaults."""
    deno = bundled_deno()
    assert deno is not None and Path(deno).is_absolute() and Path(deno).is_file()
    args = ytdlp_invocation(Settings())
    assert "--ignore-config" in args
    i = args.index("--js-runtimes")
    assert args[i - 1] == "--no-js-runtimes" and args[i + 1] == f"deno:{deno}"


def test_the_bundled_deno_is_found_without_an_activated_venv() -> None:
    """Run as .venv/bin/python with a PATH that has no venv on it: the same deno is found."""
    code = "from ytingest.ytdlp.options import bundled_deno; print(bundled_deno())"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PATH")}
    env["PATH"] = "/usr/bin:/bin"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == bundled_deno()


def test_js_runtime_overrides_and_none(tmp_path: Path) -> None:
    """JS_RUNTIME node, deno:/path and none; an unknown runtime or a missing path is a ConfigError."""
    assert js_runtime_args("node") == ["--no-js-runtimes", "--js-runtimes", "node"]
    binary = tmp_path / "deno"
    binary.write_text("")
    assert js_runtime_args(f"deno:{binary}") == [
        "--no-js-runtimes",
        "--js-runtimes",
        f"deno:{binary.resolve()}",
    ]
    assert js_runtime_args("none") == ["--no-js-runtimes"]
    with pytest.raises(ConfigError, match="does not exist"):
        js_runtime_args(f"deno:{tmp_path / 'missing'}")
    with pytest.raises(ConfigError, match="unknown runtime"):
        js_runtime_args("rhino")
    with pytest.raises(ConfigError, match="does not exist"):
        ytdlp_invocation(Settings(js_runtime="node:/no/such/node"))


def test_yt_dlp_itself_accepts_the_js_runtime_options() -> None:
    """The real yt-dlp parses the options we pass (and the deno path it is given exists)."""
    args = [*ytdlp_invocation(Settings()), "--simulate", "--version"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-500:]


def test_useful_options_pass_in_both_forms() -> None:
    """--opt value, --opt=value and -r50K are read; the values are kept as given."""
    raw = (
        "--proxy http://u:pw@proxy:3128 --sleep-requests=1 --sleep-interval 2 --max-sleep-interval 5 "
        "-r50K --limit-rate 1M --extractor-args 'youtube:player_client=web' --source-address 0.0.0.0 "
        "-4 --impersonate chrome --geo-bypass --xff default --user-agent 'Mozilla/5.0 X' "
        "--add-headers 'Accept-Language:en' -t sleep -f bestaudio[ext=m4a]/bestaudio/best"
    )
    out = checked_ytdlp_args(raw)
    assert out[:4] == ["--proxy", "http://u:pw@proxy:3128", "--sleep-requests", "1"]
    assert ["-r", "50K"] == out[out.index("-r") : out.index("-r") + 2]
    assert "youtube:player_client=web" in out and "Mozilla/5.0 X" in out and "-4" in out


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("-o /tmp/x.%(ext)s", "where audio goes"),
        ("--output=/tmp/x", "where audio goes"),
        ("-P /tmp", "where audio goes"),
        ("--exec 'rm -rf ~'", "runs commands"),
        ("--exec-before-download=echo", "runs commands"),
        ("--netrc-cmd 'cat x'", "runs commands"),
        ("--write-info-json", "not on ytingest's list"),
        ("--write-thumbnail", "not on ytingest's list"),
        ("--print-to-file x /tmp/y", "not on ytingest's list"),
        ("--download-archive a.txt", "not on ytingest's list"),
        ("-a urls.txt", "reads options or URLs"),
        ("--config-locations x.conf", "reads options or URLs"),
        ("--cookies c.txt", "COOKIES_FILE"),
        ("--cookies-from-browser=firefox", "--cookies-from-browser"),
        ("-x", "keeps the audio"),
        ("--recode-video mp4", "keeps the audio"),
        ("-v", "echo cookies"),
        ("--js-runtimes node", "JS_RUNTIME"),
        ("-f bestvideo+bestaudio", "not an audio-only"),
        ("--format=best", "not an audio-only"),
        ("-t mp3", "only the 'sleep' preset"),
        ("--add-headers 'Cookie: SID=abc'", "Cookie, Authorization"),
        ("--add-headers 'Proxy-Authorization: Basic SID=abc'", "Proxy-Authorization"),
        ("--add-headers=authorization:SID=abc", "Cookie, Authorization"),
        ("--remote-components ejs:github", "runs it"),
        ("--plugin-dirs /tmp/p", "YTDLP_PLUGIN_DIRS"),
        ("--no-plugin-dirs", "YTDLP_PLUGIN_DIRS"),
        ("--extractor-args 'youtube:innertube_host=evil.example;SID=abc'", "youtube:innertube_host"),
        ("--extractor-args YouTube:Innertube-Host=evil.example", "youtube:innertube_host"),
        ("--extractor-args 'youtube:player_client=web;innertube_key=SID=abc'", "youtube:innertube_key"),
        ("--extractor-args generic:impersonate", "youtube-ejs and youtubepot-* only"),
        ("--extractor-args youtube", "youtube-ejs and youtubepot-* only"),
        ("--extractor-args youtubepot:base_url=http://127.0.0.1:1", "youtubepot-* only"),
        ("--extractor-args 'youtube-ejs:repo=SID=abc/x'", "youtube-ejs:repo"),
        ("--extractor-args 'youtube-ejs:dev=true'", "youtube-ejs:dev"),
        ("https://www.youtube.com/@x", "only options"),
        ("--sleep-requests", "needs a value"),
        ("--force-ipv4=yes", "takes no value"),
        ("--proxy 'unterminated", "cannot split"),
    ],
)
def test_options_that_break_the_contract_are_refused_with_one_line(raw: str, why: str) -> None:
    """Output paths, commands, file writers, cookies, non-audio formats: a one-line ConfigError."""
    with pytest.raises(ConfigError) as caught:
        checked_ytdlp_args(raw)
    message = str(caught.value)
    assert why in message and "\n" not in message and message.startswith("YTDLP_ARGS")
    assert "SID=abc" not in message


def test_audio_only_selections() -> None:
    """bestaudio-type alternatives with filters are audio; best only as the last fallback."""
    for ok in ("bestaudio", "ba", "bestaudio/best", "ba[ext=m4a]/ba/b", "worstaudio", "ba[abr<=128]"):
        assert is_audio_only(ok), ok
    # ba*/bestaudio*: "the best format that contains audio", which may carry video too
    for bad in (
        "best",
        "bv+ba",
        "bestvideo",
        "best/bestaudio",
        "140",
        "",
        "ba/",
        "ba*",
        "bestaudio*[abr<=128]",
    ):
        assert not is_audio_only(bad), bad


def test_a_given_audio_format_replaces_the_default() -> None:
    """The downloader adds -f bestaudio/best only when YTDLP_ARGS had no -f of its own."""
    assert format_given(ytdlp_invocation(Settings(ytdlp_args="-f bestaudio[ext=m4a]/bestaudio")))
    assert format_given(ytdlp_invocation(Settings(ytdlp_args="-fbestaudio")))
    assert not format_given(ytdlp_invocation(Settings(ytdlp_args="--sleep-requests 1")))
    # a value that looks like -f is a value: yt-dlp would read no format, so the default must stay
    for raw in ("--user-agent -fx", "--referer=-f --add-headers X-A:-f", "--user-agent --format=ba"):
        assert not format_given(ytdlp_invocation(Settings(ytdlp_args=raw))), raw


def test_cookies_reach_the_invocation_and_a_missing_file_is_refused_without_its_path(tmp_path: Path) -> None:
    """--cookies FILE and --cookies-from-browser are passed on; an unreadable file never names its path."""
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n")
    args = ytdlp_invocation(Settings(cookies_file=cookies, cookies_from_browser="firefox:work"))
    assert args[args.index("--cookies") + 1] == str(cookies)
    assert args[args.index("--cookies-from-browser") + 1] == "firefox:work"
    with pytest.raises(ConfigError) as caught:
        ytdlp_invocation(Settings(cookies_file=tmp_path / "secret-name.txt"))
    assert "secret-name" not in str(caught.value) and "cookies" in str(caught.value)


def test_the_command_line_and_settings_are_redacted() -> None:
    """Cookie paths, browser profiles, Cookie headers and proxy passwords never survive redact()."""
    line = " ".join(
        ytdlp_invocation(
            Settings(cookies_from_browser="chrome:Profile 1", ytdlp_args="--proxy socks5://me:hunter2@p:1080")
        )
    )
    masked = redact(line)
    assert "hunter2" not in masked and "chrome:Profile" not in masked
    assert "me:***@" in masked and "--cookies-from-browser ***" in masked
    assert redact("--cookies=/home/me/c.txt") == "--cookies=***"
    assert (
        redact("use --cookies FILE or --cookies-from-browser BROWSER")
        == "use --cookies FILE or --cookies-from-browser BROWSER"
    )
    assert redact("Cookie: SID=abc; HSID=def") == "Cookie: ***"
    assert "secret" not in redact("ERROR: '/secret/c.txt' does not look like a Netscape format cookies file")
    assert "SID" not in redact("WARNING: skipping cookie file entry due to invalid length 1: 'SID\\tabc'")
    assert repr(Settings(cookies_file=Path("/secret/c.txt"), ytdlp_args="--proxy x")).count("secret") == 0


def test_youtube_extractor_arguments_with_known_keys_pass() -> None:
    """player_client, po_token, visitor_data, lang, skip, approximate_date...: passed on as given."""
    raw = (
        "--extractor-args 'youtube:player_client=web,mweb;po_token=web.gvs+X;visitor_data=V;skip=hls'"
        " --extractor-args YouTubeTab:Approximate-Date;skip=webpage"
    )
    out = checked_ytdlp_args(raw)
    assert (
        out[1].startswith("youtube:player_client=web,mweb")
        and out[3] == "YouTubeTab:Approximate-Date;skip=webpage"
    )
    assert (
        "innertube_host" not in EXTRACTOR_ARGS["youtube"] and "innertube_key" not in EXTRACTOR_ARGS["youtube"]
    )


def test_user_plugin_folders_never_load_and_yt_dlp_takes_the_option(tmp_path: Path) -> None:
    """Every child gets --no-plugin-dirs and then only the folders it should search: never yt-dlp's
    ``default`` (its user folders) unless YTDLP_USER_PLUGINS=true; YTDLP_PLUGIN_DIRS as given."""
    import yt_dlp

    args = ytdlp_invocation(Settings())
    assert args[:3] == (sys.executable, "-m", "yt_dlp") and "--no-plugin-dirs" in args
    assert "default" not in yt_dlp.parse_options(list(args[3:])).options.plugin_dirs
    args = ytdlp_invocation(Settings(ytdlp_plugin_dirs=(tmp_path,)))
    assert yt_dlp.parse_options(list(args[3:])).options.plugin_dirs[-1] == str(tmp_path.resolve())
    args = ytdlp_invocation(Settings(ytdlp_user_plugins=True))
    assert yt_dlp.parse_options(list(args[3:])).options.plugin_dirs == ["default"]


def test_approximate_date_joins_the_users_extractor_argument() -> None:
    """Merged into the last --extractor-args for youtubetab (the one yt-dlp keeps), else added."""
    assert with_extractor_arg(["y"], "youtubetab", "approximate_date") == [
        "y",
        "--extractor-args",
        "youtubetab:approximate_date",
    ]
    given = ["y", "--extractor-args", "youtubetab:skip=webpage;", "--user-agent", "--extractor-args"]
    assert with_extractor_arg(given, "youtubetab", "approximate_date") == [
        "y",
        "--extractor-args",
        "youtubetab:skip=webpage;approximate_date",
        "--user-agent",
        "--extractor-args",
    ]
    assert with_extractor_arg(["y", "--extractor-args=YouTubeTab:skip=x"], "youtubetab", "a") == [
        "y",
        "--extractor-args",
        "YouTubeTab:skip=x;a",
    ]


def test_each_child_gets_a_private_copy_of_the_cookies(tmp_path: Path) -> None:
    """The child's --cookies names a 0600 copy in its own folder; the user's (read-only) file is untouched."""
    mine = tmp_path / "cookies.txt"
    mine.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tSID\tv\n")
    mine.chmod(0o444)
    args = ytdlp_invocation(Settings(cookies_file=mine))
    scratch = tmp_path / "child"
    scratch.mkdir()
    child = private_cookies(args, scratch)
    copy = Path(child[child.index("--cookies") + 1])
    assert copy.parent == scratch and copy.read_bytes() == mine.read_bytes()
    assert copy.stat().st_mode & 0o777 == 0o600
    assert [a for a in child if a != str(copy)] == [a for a in args if a != str(mine)]
    assert private_cookies(["y", "-f", "ba"], scratch) == ["y", "-f", "ba"]


def test_po_token_provider_arguments_pass_for_any_provider() -> None:
    """``youtubepot-*`` takes any provider and key; youtube's formats, webpage_client, player_skip and
    pot_trace and youtube-ejs's jitless pass too."""
    raw = (
        "--extractor-args youtubepot-bgutilhttp:base_url=http://127.0.0.1:4416"
        " --extractor-args 'YouTubePot-Other:base_url=http://[::1]:8080/x;Any-Key=1'"
        " --extractor-args youtubepot-local:base_url=https://localhost"
        " --extractor-args 'youtube:formats=missing_pot;webpage_client=web;player_skip=js;pot_trace=true'"
        " --extractor-args youtube-ejs:jitless=true"
    )
    out = checked_ytdlp_args(raw)
    assert out[1] == "youtubepot-bgutilhttp:base_url=http://127.0.0.1:4416" and len(out) == 10


@pytest.mark.parametrize(
    "url",
    [
        "http://pot.example:4416",
        "http://user:S3CRET@10.0.0.5:4416",
        "http://127.0.0.1.evil.example",
        "file:///tmp/x",
        "127.0.0.1:4416",
        "http://127.0.0.1:4416\\,http://S3CRET.example",
    ],
)
def test_a_provider_base_url_must_be_loopback_and_is_never_echoed(url: str) -> None:
    """The provider is sent the proxy URL (and its password): a base_url off this machine is refused,
    naming the extractor and key only; PO_TOKEN_REMOTE_OK=true allows it."""
    raw = f"--extractor-args 'youtubepot-bgutilhttp:base_url={url}'"
    with pytest.raises(ConfigError) as caught:
        checked_ytdlp_args(raw)
    message = str(caught.value)
    assert (
        "youtubepot-bgutilhttp:base_url must be a loopback URL" in message and "PO_TOKEN_REMOTE_OK" in message
    )
    assert url not in message and "S3CRET" not in message and "\n" not in message
    assert checked_ytdlp_args(raw, remote_pot_ok=True)[1] == f"youtubepot-bgutilhttp:base_url={url}"
    with pytest.raises(ConfigError):
        ytdlp_invocation(Settings(ytdlp_args=raw))
    assert ytdlp_invocation(Settings(ytdlp_args=raw, po_token_remote_ok=True))[-1].endswith(url)


def test_a_refused_extractor_key_never_echoes_a_value() -> None:
    """A po_token is a value: the message names youtube and the key only."""
    with pytest.raises(ConfigError) as caught:
        checked_ytdlp_args("--extractor-args 'youtube:po_token=web.gvs+SECRETTOKEN;innertube_host=h'")
    assert "youtube:innertube_host" in str(caught.value) and "SECRETTOKEN" not in str(caught.value)


def test_a_value_typed_without_its_key_is_not_echoed() -> None:
    """``youtube:web.gvs+TOKEN`` (no ``=``) reads as a key; one that is not a plain name is not shown."""
    with pytest.raises(ConfigError) as caught:
        checked_ytdlp_args("--extractor-args 'youtube:web.gvs+SECRETTOKEN'")
    assert "SECRETTOKEN" not in str(caught.value) and "youtube:KEY is not allowed" in str(caught.value)
