"""Which yt-dlp plugins a child loads (the folders it is told to search), and the doctor's reading
of yt-dlp's plugin lines, PO token providers and yt-dlp-ejs pin, without a yt-dlp child."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import pytest

from ytingest.cli.args import settings_from
from ytingest.config import Settings
from ytingest.doctor.plugins import (
    Plugins,
    ejs_check,
    parse_plugins,
    ping,
    plugins_check,
    pot_check,
    provider_urls,
    wanted_ejs,
)
from ytingest.errors import ConfigError
from ytingest.ytdlp.plugins import path_plugin_folders, plugin_args


def plugin_root(folder: Path) -> Path:
    (folder / "yt_dlp_plugins" / "extractor").mkdir(parents=True)
    return folder


def test_a_path_entry_with_plugins_is_searched_through_its_parent(tmp_path: Path) -> None:
    """yt-dlp searches DIR/*/yt_dlp_plugins: a site-packages holding plugins is given as the folder
    above it, once; entries without plugins, and the working folder, are not given."""
    site = plugin_root(tmp_path / "lib" / "site-packages")
    plain = tmp_path / "lib2" / "plain"
    plain.mkdir(parents=True)
    cwd = plugin_root(tmp_path / "work" / "cwd")
    entries = ["", str(cwd), str(plain), str(site), str(site)]
    assert path_plugin_folders(entries, cwd=cwd) == [site.parent]


def test_an_entry_whose_folder_holds_other_plugins_is_skipped(tmp_path: Path) -> None:
    """The folder above would also load a sibling not on the path: that entry is left out."""
    mine = plugin_root(tmp_path / "pp" / "mine")
    plugin_root(tmp_path / "pp" / "stranger")
    assert path_plugin_folders([str(mine)], cwd=tmp_path) == []
    assert path_plugin_folders([str(mine), str(tmp_path / "pp" / "stranger")], cwd=tmp_path) == [
        tmp_path / "pp"
    ]


def test_a_zip_on_the_path_counts_only_when_it_holds_plugins(tmp_path: Path) -> None:
    """yt-dlp reads plugins from zips on sys.path too; a zip without them is not a reason to search,
    nor a stranger beside one; another zip with plugins beside it is."""
    folder = tmp_path / "zips"
    folder.mkdir()
    for name, member in (("p.zip", "yt_dlp_plugins/extractor/x.py"), ("stdlib.zip", "os.py")):
        with zipfile.ZipFile(folder / name, "w") as z:
            z.writestr(member, "")
    assert path_plugin_folders([str(folder / "stdlib.zip")], cwd=tmp_path) == []
    assert path_plugin_folders([str(folder / "p.zip")], cwd=tmp_path) == [folder]
    with zipfile.ZipFile(folder / "other.zip", "w") as z:
        z.writestr("yt_dlp_plugins/postprocessor/y.py", "")
    assert path_plugin_folders([str(folder / "p.zip")], cwd=tmp_path) == []


def test_plugin_dirs_setting_is_split_checked_and_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """YTDLP_PLUGIN_DIRS is a PATH-like list of folders; each becomes a --plugin-dirs."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    monkeypatch.setenv("YTDLP_PLUGIN_DIRS", f"{a}:{b}")
    settings = Settings()
    assert settings.ytdlp_plugin_dirs == (a, b)
    args = plugin_args(settings)
    assert args[0] == "--no-plugin-dirs" and args[-4:] == ["--plugin-dirs", str(a), "--plugin-dirs", str(b)]
    assert "default" not in args
    assert plugin_args(Settings(ytdlp_user_plugins=True))[:3] == [
        "--no-plugin-dirs",
        "--plugin-dirs",
        "default",
    ]


def test_a_missing_plugin_folder_is_a_one_line_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder that does not exist stops the run (exit 2) before yt-dlp would raise a traceback."""
    monkeypatch.setenv("YTDLP_PLUGIN_DIRS", str(tmp_path / "missing"))
    with pytest.raises(ConfigError) as caught:
        settings_from(argparse.Namespace())
    assert "YTDLP_PLUGIN_DIRS" in str(caught.value) and "\n" not in str(caught.value)


def test_a_custom_yt_dlp_gets_only_the_named_folders(tmp_path: Path) -> None:
    """YTDLP_PATH runs another Python: this one's path says nothing about its plugins."""
    assert plugin_args(Settings(ytdlp_path="/opt/yt-dlp")) == ["--no-plugin-dirs"]


# ---- the doctor's readings ------------------------------------------------------------------------

VERBOSE = """[debug] Command-line config: ['-v', '--extractor-args', 'youtube:po_token=web.gvs+SECRET']
[debug] Extractor Plugins: YtingestProbeIE, OtherIE as other
[debug] Post-Processor Plugins: SponsorPP
[debug] Plugin directories: /venv/lib/python3.11/site-packages/yt_dlp_plugins
[debug] Loaded 1744 extractors
[debug] [youtube] [pot] PO Token Providers: bgutil:http-1.2.2 (external), ytingest-probe-0.1.0 (external)
[debug] [youtube] [pot] PO Token Cache Providers: memory
"""


def test_only_the_plugin_lines_are_read() -> None:
    """Extractor and post-processor plugins, directories and providers; the command line is not kept."""
    plugins = parse_plugins(VERBOSE)
    assert plugins.extractors == ("YtingestProbeIE", "OtherIE as other")
    assert plugins.postprocessors == ("SponsorPP",)
    assert plugins.directories == ("/venv/lib/python3.11/site-packages/yt_dlp_plugins",)
    assert plugins.providers == ("bgutil:http-1.2.2 (external)", "ytingest-probe-0.1.0 (external)")
    check = plugins_check(plugins, "")
    assert "SECRET" not in repr(check) and "YtingestProbeIE" in check.detail
    off = parse_plugins("[debug] Plugin directories: none (disabled)\n")
    assert off == Plugins(directories=(), providers=None)


def test_provider_urls_come_from_the_extractor_args_or_bgutils_default() -> None:
    """``youtubepot-KEY:base_url`` (the last given); bgutil's default only when its provider loaded."""
    args = [
        "youtubepot-a:base_url=http://127.0.0.1:1",
        "YouTubePot-A:x=1;Base-Url=http://127.0.0.1:2,http://y",
    ]
    assert provider_urls(args) == {"a": "http://127.0.0.1:2"}
    assert provider_urls([], ("bgutil:http-1.2.2 (external)",)) == {"bgutilhttp": "http://127.0.0.1:4416"}
    assert provider_urls([]) == {}


def test_po_token_verdicts() -> None:
    """A provider whose server answers is ok; one that does not is a warning with the fix; none is
    information; a configured URL without a provider plugin is a warning. No user or password shown."""
    plugins = parse_plugins(VERBOSE)
    up = {"bgutilhttp": ("http://u:pw@127.0.0.1:4416/x", True, "server 1.2.2")}
    ok = pot_check(plugins, up)
    assert ok.status == "ok" and "answers (server 1.2.2)" in ok.detail and "pw" not in ok.detail
    down = pot_check(plugins, {"bgutilhttp": ("http://127.0.0.1:4416", False, "Connection refused")})
    assert down.status == "warn" and "does not answer: Connection refused" in down.detail and down.fix
    assert pot_check(Plugins(directories=()), {}).status == "info"
    assert pot_check(Plugins(directories=()), up).status == "warn"


def test_ping_never_leaves_this_machine() -> None:
    """A base_url off this machine is not tried."""
    assert ping("http://pot.example:4416") == (False, "not tried: not a loopback URL")


def test_ejs_version_against_yt_dlps_pin() -> None:
    """yt-dlp uses ejs scripts whose major.minor match its pin; the installed pair is read from metadata."""
    assert ejs_check("0.8.0", "0.8.1").status == "ok"
    old = ejs_check("0.8.0", "0.7.2")
    assert old.status == "warn" and "yt-dlp[default]" in old.fix
    assert ejs_check("0.8.0", None).status == "warn"
    assert ejs_check(None, "0.8.0").status == "info"
    assert wanted_ejs() is not None
