"""Each option is declared once: the setting flags against ``Settings``, the search options against
``SearchQuery`` (the CLI's flags and the web's parameters alike), the listing flags against
``Listing`` (``stream`` and ``enqueue`` alike)."""

from __future__ import annotations

import argparse
import typing
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ytingest.cli import main as cli
from ytingest.cli import workers as cli_workers
from ytingest.cli.args import SETTING_FLAGS, build_parser, parse_args, query_from, settings_from
from ytingest.cli.settings import flag_kind
from ytingest.config import Settings
from ytingest.errors import ConfigError
from ytingest.items import RunSummary
from ytingest.search import MODES, SearchQuery, query_options
from ytingest.stages.discover import Listing
from ytingest.web.params import SEARCH_PARAMS, search_query


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _setting_actions() -> list[tuple[str, argparse.Action]]:
    """(command, action) for every action of every command whose dest is a ``Settings`` field."""
    return [
        (command, action)
        for command, parser in _commands().items()
        for action in parser._actions
        if action.dest in Settings.model_fields
    ]


# ---- setting flags ---------------------------------------------------------------------------


def test_every_flag_that_sets_a_setting_is_declared_once() -> None:
    """Each setting's flag is one argparse action, shared by every command that takes it (a
    second ``add_argument`` for ``--io-workers`` would be a second action), and it is the
    flag ``SETTING_FLAGS`` declares; no other flag's dest is a setting's name."""
    by_field: dict[str, set[int]] = {}
    for command, action in _setting_actions():
        assert action.dest in SETTING_FLAGS, f"{command} {action.option_strings}: not in SETTING_FLAGS"
        assert action.option_strings[0] == SETTING_FLAGS[action.dest].option(action.dest)
        by_field.setdefault(action.dest, set()).add(id(action))
    twice = {name: len(ids) for name, ids in by_field.items() if len(ids) > 1}
    assert not twice, f"declared more than once: {twice}"
    assert set(by_field) == set(SETTING_FLAGS), "a setting flag that no command takes"
    for flag in ("--log-format", "--log-level"):  # not settings, but every command's too
        shared = {id(a) for p in _commands().values() for a in p._actions if flag in a.option_strings}
        assert len(shared) == 1, flag


def setting_flag_rows() -> list[str]:
    """docs/cli.md's table: each setting flag, the variable it sets, the commands that take it."""
    commands = _commands()
    rows = []
    for name in SETTING_FLAGS:
        action = next(a for p in commands.values() for a in p._actions if a.dest == name)
        taking = [c for c, p in commands.items() if action in p._actions]
        flag = "/".join(action.option_strings)
        shown = "every command" if taking == list(commands) else ", ".join(taking)
        rows.append(f"| `{flag}` | `{name.upper()}` | {shown} |")
    return rows


def test_the_docs_list_every_setting_flag() -> None:
    """docs/cli.md's table of setting flags is the parser's (regenerate it with setting_flag_rows)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    table = [line for line in text.splitlines() if line.startswith("| `--")]
    assert table == setting_flag_rows()


def test_the_flags_agree_with_the_settings_fields() -> None:
    """Default None (the environment wins when a flag is absent); a Literal's choices, a number's
    or a path's type, a bool's switch: as the field says."""
    seen = set()
    for command, action in _setting_actions():
        if action.dest in seen:
            continue
        seen.add(action.dest)
        info = Settings.model_fields[action.dest]
        assert action.default is None, (command, action.dest)
        kind, choices = flag_kind(info)
        bare = [a for a in typing.get_args(info.annotation) if a is not type(None)] or [info.annotation]
        if bare == [bool]:
            assert action.nargs == 0, action.dest  # a switch: no value
            continue
        assert tuple(action.choices or ()) == (choices or ()), action.dest
        if typing.get_origin(bare[0]) is typing.Literal:
            assert tuple(action.choices or ()) == typing.get_args(bare[0]), action.dest
        expected_type = bare[0] if bare[0] in (int, float, Path) else None
        assert action.type is expected_type, action.dest
        assert action.help and action.dest.upper() in action.help, action.dest  # names its variable


def test_an_absent_flag_leaves_the_environment_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With no flags the settings are the environment's; each given flag overrides one field."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YTINGEST_HOME", str(tmp_path / "h"))
    for name, value in {
        "IO_WORKERS": "7",
        "MODE": "bulk",
        "ASR_BACKEND": "env-asr",
        "TABS": "shorts",
    }.items():
        monkeypatch.setenv(name, value)
    plain = settings_from(parse_args(["stream", "http://x/c"]))
    assert plain == Settings()
    assert (plain.io_workers, plain.mode, plain.asr_backend, plain.tabs) == (7, "bulk", "env-asr", "shorts")
    flags = ["--io-workers", "3", "--asr-backend", "mine", "--speaker-backend", "pyannote"]
    flags += ["--embed-backend", "other", "--tabs", "videos"]
    given = settings_from(parse_args(["stream", "http://x/c", *flags]))
    assert (given.io_workers, given.asr_backend, given.speaker_backend) == (3, "mine", "pyannote")
    assert (given.embed_backend, given.tabs, given.mode) == ("other", "videos", "bulk")


def test_bad_setting_flags_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong type or an unknown choice stops argparse (exit 2); a value out of the field's
    bounds is one ConfigError naming the setting."""
    for argv in (["stream", "u", "--io-workers", "many"], ["stream", "u", "--mode", "fast"]):
        with pytest.raises(SystemExit) as stop:
            parse_args(argv)
        assert stop.value.code == 2
    assert "invalid choice: 'fast'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="io_workers"):
        settings_from(parse_args(["worker", "--io-workers", "0"]))


def test_top_keeps_its_quieter_log_level() -> None:
    """One --log-level for every command; top's default is warning, the others' info."""
    assert parse_args(["top"]).log_level == "warning"
    assert parse_args(["status"]).log_level == "info"
    assert parse_args(["top", "--log-level", "debug"]).log_level == "debug"


# ---- search options: one declaration for the CLI and the web ----------------------------------


def test_the_search_flags_and_the_web_parameters_are_searchquerys_options() -> None:
    search = _commands()["search"]
    options = query_options()
    flags = {a.option_strings[0]: a for a in search._actions if a.dest.startswith("search_")}
    assert set(flags) == {"--" + name.replace("_", "-") for name in options}
    assert all(a.default is None for a in flags.values())  # unset: SearchQuery's own defaults
    assert flags["--mode"].choices == options["mode"].choices == MODES
    assert SEARCH_PARAMS == ("q", *options)
    assert set(options) < {f.name for f in fields(SearchQuery)}


def test_the_cli_and_the_web_build_the_same_query() -> None:
    values = {
        "limit": "3",
        "mode": "keyword",
        "speaker": "Ada",
        "channel": "http://127.0.0.1:9/feed.xml",
        "video": "v1",
        "since": "2025-12-01",
        "until": "2026-01-01",
        "min_score": "0.25",
        "lang": "de",
    }
    argv = ["search", '"vector index" near']
    for name, value in values.items():
        argv += ["--" + name.replace("_", "-"), value]
    from_cli = query_from(parse_args(argv), embed_model="m")
    from_web = search_query({"q": '"vector index" near', **values}, embed_model="m")
    assert from_cli == from_web
    assert (from_cli.limit, from_cli.since, from_cli.min_score) == (3, date(2025, 12, 1), 0.25)
    plain = query_from(parse_args(["search", "words"]), embed_model=None)
    assert plain == search_query({"q": "words"}) == SearchQuery("words")


@pytest.mark.parametrize(
    ("name", "bad", "words"),
    [
        ("limit", "ten", "must be a whole number, not 'ten'"),
        ("min_score", "high", "must be a number, not 'high'"),
        ("min_score", "inf", "must be a finite number"),
        ("since", "yesterday", "not a date: 'yesterday'"),
    ],
)
def test_a_bad_value_is_refused_with_the_same_words(
    capsys: pytest.CaptureFixture[str], name: str, bad: str, words: str
) -> None:
    """The CLI: exit 2 naming the flag; the web: a ConfigError naming the parameter; one reason."""
    with pytest.raises(SystemExit) as stop:
        parse_args(["search", "x", "--" + name.replace("_", "-"), bad])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert words in err and f"--{name.replace('_', '-')}" in err, err
    with pytest.raises(ConfigError) as refused:
        search_query({"q": "x", name: bad})
    assert str(refused.value).startswith(f"{name}: ") and words in str(refused.value)


def test_whole_query_checks_are_the_models_for_both() -> None:
    """--since after --until, a limit out of range: SearchQuery refuses them, from either side."""
    for values in ({"since": "2026-02-01", "until": "2026-01-01"}, {"limit": "5000"}):
        argv = ["search", "x"] + [a for k, v in values.items() for a in ("--" + k, v)]
        with pytest.raises(ConfigError) as cli_error:
            query_from(parse_args(argv), embed_model=None)
        with pytest.raises(ConfigError) as web_error:
            search_query({"q": "x", **values})
        assert str(cli_error.value) == str(web_error.value)


# ---- the listing: stream and enqueue pass the same Listing --------------------------------------


class _Engine:
    """Records what ``stream`` is asked for; nothing runs."""

    monitor = None

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def stream(self, url: str, **options: Any) -> RunSummary:
        self.calls.append((url, options))
        return RunSummary(done=0, failed=0, skipped=0, segments=0, audio_seconds=0.0, wall_seconds=0.0)


LISTING_ARGS = ["--tabs", "shorts,videos", "--limit", "4", "--skip-shorts", "--since", "2026-01-01"]
LISTING_ARGS += ["--until", "2026-02-01", "--new-only"]


async def test_stream_and_enqueue_pass_the_same_listing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every listing flag reaches the run: ``stream`` once dropped --tabs while ``enqueue`` passed it."""
    engine: Any = _Engine()
    assert await cli.cmd_stream(engine, parse_args(["stream", "http://x/c", "--json", *LISTING_ARGS])) == 0
    ((_, options),) = engine.calls
    streamed = Listing(**options)
    queued: list[Listing] = []

    async def enqueue(engine: Any, url: str, listing: Listing) -> Any:
        queued.append(listing)
        return argparse.Namespace(queued=0, skipped=0, to_dict=dict)

    monkeypatch.setattr(cli_workers, "enqueue_channel", enqueue)
    await cli_workers.cmd_enqueue(engine, parse_args(["enqueue", "http://x/c", "--json", *LISTING_ARGS]))
    assert queued == [streamed]
    expected = Listing(
        limit=4,
        skip_shorts=True,
        since=date(2026, 1, 1),
        until=date(2026, 2, 1),
        new_only=True,
        tabs=("shorts", "videos"),
    )
    assert streamed == expected
    assert {f.name for f in fields(Listing)} == set(options)  # every field of Listing, none left out
    capsys.readouterr()
