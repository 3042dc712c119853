"""Settings come from the environment and .env; CLI flags override them."""

from pathlib import Path

import pytest

from ytingest.cli.args import build_parser, settings_from
from ytingest.config import Settings
from ytingest.errors import ConfigError


def test_defaults_match_the_documented_ones(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """IO_WORKERS 12 and BATCH_SIZE 768 unless told otherwise."""
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert (s.io_workers, s.batch_size) == (12, 768)
    assert s.database_url is None


def test_env_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Environment variables and a .env file in the working directory set knobs."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("BATCH_SIZE=128\nDB_WORKERS=3\n")
    monkeypatch.setenv("IO_WORKERS", "24")
    s = Settings()
    assert (s.io_workers, s.batch_size, s.db_workers) == (24, 128, 3)


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """YTINGEST_HOME= (empty) keeps the default home rather than the current folder; IO_WORKERS= keeps 12."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YTINGEST_HOME", "")
    monkeypatch.setenv("IO_WORKERS", "")
    s = Settings()
    assert s.ytingest_home != tmp_path.resolve()
    assert s.ytingest_home.name == "ytingest" and s.io_workers == 12


def test_flags_override_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--io-workers beats IO_WORKERS; --home beats YTINGEST_HOME."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IO_WORKERS", "24")
    monkeypatch.setenv("YTINGEST_HOME", str(tmp_path / "env-home"))
    args = build_parser().parse_args(["stream", "u", "--io-workers", "5", "--home", str(tmp_path / "h")])
    s = settings_from(args)
    assert s.io_workers == 5
    assert s.ytingest_home == (tmp_path / "h").resolve()


def test_invalid_value_is_one_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A bad knob is a ConfigError naming the setting, not a pydantic traceback."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IO_WORKERS", "0")
    with pytest.raises(ConfigError, match="io_workers"):
        settings_from(build_parser().parse_args(["status"]))


def test_database_password_is_hidden_in_repr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The DSN is a secret: repr(settings) does not show it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:topsecret@h/db")
    assert "topsecret" not in repr(Settings())


def test_version_names_ytingest_and_yt_dlp(capsys: pytest.CaptureFixture[str]) -> None:
    """``ytingest --version`` prints both versions, from the installed packages, and exits 0."""
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"ytingest {version('ytingest')} (yt-dlp {version('yt-dlp')})"


def test_top_level_help_lists_the_commands_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    """The commands in the order a user needs them, each with a short plain help, no internal notes."""
    import re

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    commands = re.findall(r"^    (\w+)(?: +|\n {10,})\S", out, re.MULTILINE)  # a long name: help below
    assert commands == [
        "stream",
        "retry",
        "status",
        "channels",
        "search",
        "serve",
        "mcp",
        "export",
        "speakers",
        "reprocess",
        "delete",
        "db",
        "enqueue",
        "worker",
        "workers",
        "top",
        "doctor",
    ]
    assert not re.search(r"issue|TODO|internal", out, re.IGNORECASE)


def test_status_channel_and_the_new_commands_parse() -> None:
    """``status --channel URL``, ``channels --json`` and ``doctor --json`` are commands with flags."""
    parser = build_parser()
    assert parser.parse_args(["status", "--channel", "https://example.org/feed"]).channel == (
        "https://example.org/feed"
    )
    assert parser.parse_args(["status"]).channel is None
    assert parser.parse_args(["channels", "--json"]).json is True
    assert parser.parse_args(["doctor", "--json"]).json is True
    mcp = parser.parse_args(["mcp"])
    assert (mcp.http, mcp.host, mcp.port) == (False, "127.0.0.1", 8766)  # stdio unless --http; loopback
    assert parser.parse_args(["mcp", "--http", "--port", "0"]).port == 0  # any free port
    for bad in ("99999", "-1", "http"):
        with pytest.raises(SystemExit):
            parser.parse_args(["mcp", "--http", "--port", bad])


def test_every_command_that_runs_yt_dlp_takes_its_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """stream, retry and doctor take --cookies, --cookies-from-browser, --ytdlp-arg, --js-runtime,
    so doctor checks what the run will get; the flags become Settings."""
    monkeypatch.chdir(tmp_path)
    cookies = tmp_path / "c.txt"
    flags = ["--cookies", str(cookies), "--cookies-from-browser", "firefox", "--js-runtime", "node"]
    flags += ["--ytdlp-arg=--proxy", "--ytdlp-arg=socks5://h:1"]
    for command in (["stream", "u"], ["retry"], ["doctor"]):
        s = settings_from(build_parser().parse_args([*command, *flags]))
        assert s.cookies_file == cookies and s.cookies_from_browser == "firefox" and s.js_runtime == "node"
        assert s.ytdlp_args == "--proxy socks5://h:1", command
