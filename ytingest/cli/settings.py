"""The flags that set ``Settings``, each declared once in ``SETTING_FLAGS``.

A flag's type, choices and environment variable come from the ``Settings`` field it sets; its
default is None, so the environment and ``.env`` win when it is absent. Each flag becomes one
argparse action in a parent parser of its own (``setting_parents``): the commands that take it
name that parent, so every command shares the one declaration. ``settings_from`` reads the same
table back into ``Settings(**overrides)``.
"""

from __future__ import annotations

import argparse
import shlex
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from ytingest.config import Settings
from ytingest.errors import ConfigError

COMMON, YTDLP = "common options", "yt-dlp options"  # help sections; the rest go under "options"


@dataclass(frozen=True, slots=True)
class SettingFlag:
    """How the command line sets one ``Settings`` field (its key in ``SETTING_FLAGS``).

    ``help`` says what it does; the environment variable and default are added from the field.
    A bool field is a ``switch``: ``on`` (``--x``), ``off`` (``--no-x``) or ``both``
    (``--x/--no-x``). A ``repeat`` flag may be given many times; its values are joined like a
    shell would (``--ytdlp-arg`` → ``YTDLP_ARGS``)."""

    help: str
    flag: str = ""  # default: --field-name
    switch: Literal["on", "off", "both"] | None = None
    group: str | None = None
    repeat: bool = False
    metavar: str | None = None

    def option(self, name: str) -> str:
        if self.flag:
            return self.flag
        dashed = name.replace("_", "-")
        return f"--no-{dashed}" if self.switch == "off" else f"--{dashed}"


SETTING_FLAGS: dict[str, SettingFlag] = {
    # every command
    "ytingest_home": SettingFlag("data folder", flag="--home", group=COMMON, metavar="DIR"),
    "database_url": SettingFlag("PostgreSQL with pgvector; unset: embedded", group=COMMON, metavar="URL"),
    # the commands that run yt-dlp
    "cookies_file": SettingFlag("Netscape cookies file", flag="--cookies", group=YTDLP),
    "cookies_from_browser": SettingFlag("BROWSER[:PROFILE] to read cookies from", group=YTDLP),
    "ytdlp_args": SettingFlag(
        "an extra yt-dlp option, repeatable: --ytdlp-arg=--proxy --ytdlp-arg=URL",
        flag="--ytdlp-arg",
        group=YTDLP,
        repeat=True,
        metavar="ARG",
    ),
    "js_runtime": SettingFlag("RUNTIME[:PATH] for yt-dlp's YouTube challenges", group=YTDLP),
    # a channel's listing
    "tabs": SettingFlag("tabs of a bare channel URL to list, in order: videos, streams, shorts"),
    # a run
    "keep_audio": SettingFlag("keep downloaded audio", switch="on"),
    "io_workers": SettingFlag("concurrent downloads"),
    "asr_workers": SettingFlag("parallel transcriptions"),
    "batch_size": SettingFlag("rows per embedding micro-batch"),
    "encode_batch_size": SettingFlag("rows per model forward pass"),
    "db_workers": SettingFlag("database writers"),
    "autotune": SettingFlag(
        "let ytingest resize IO_WORKERS; default: on unless IO_WORKERS is set", switch="both"
    ),
    "metrics_port": SettingFlag(
        "serve /metrics and /status on 127.0.0.1:PORT; 0: any free port", metavar="PORT"
    ),
    "mode": SettingFlag("stream, or 3-phase bulk"),
    "asr_batching": SettingFlag("ASR batching"),
    "asr_batch_size": SettingFlag("speech chunks per model call"),
    # models, each by its backend's name for it
    "asr_backend": SettingFlag("the speech-recognition backend, by its registered name"),
    "asr_model": SettingFlag("the ASR backend's model: a size name or a model folder"),
    "embed_backend": SettingFlag("the embedding backend, by its registered name"),
    "embed_model": SettingFlag("the embedding model (its vectors are the ones searched): a name or a folder"),
    # speakers
    "speakers": SettingFlag("no speaker labels, no speaker model", switch="off"),
    "voices_dir": SettingFlag("voices to enrol by name; other voices get unknown-N"),
    "speaker_backend": SettingFlag("the speaker-ID backend: resemblyzer, pyannote or a registered one"),
    # the cluster
    "worker_name": SettingFlag("this worker's name (default: <host>-<pid>)", flag="--name"),
}


def flag_kind(info: FieldInfo) -> tuple[type | None, tuple[str, ...] | None]:
    """The argparse ``type`` and ``choices`` of a field: ``X | None`` is ``X``; a ``Literal``
    gives its choices; ``int``, ``float`` and ``Path`` convert; anything else stays text."""
    tp: Any = info.annotation
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        (tp,) = [arg for arg in typing.get_args(tp) if arg is not type(None)]
    if typing.get_origin(tp) is Literal:
        return None, tuple(str(value) for value in typing.get_args(tp))
    return (tp if tp in (int, float, Path) else None), None


def _help(name: str, spec: SettingFlag, info: FieldInfo) -> str:
    env = f"{Settings.model_config.get('env_prefix', '')}{name}".upper()
    if spec.switch == "on":
        return f"{spec.help} ({env}=true)"
    if spec.switch == "off":
        return f"{spec.help} ({env}=false)"
    if spec.repeat:
        return f"{spec.help} (replaces {env})"
    shown = info.default_factory is None and info.default not in (None, "") and spec.switch is None
    return f"{spec.help} ({env}" + (f"; default: {info.default}" if shown else "") + ")"


def _add(parser: argparse.ArgumentParser, name: str, spec: SettingFlag) -> None:
    info = Settings.model_fields[name]
    target = parser.add_argument_group(spec.group) if spec.group else parser
    options: dict[str, Any] = {"dest": name, "default": None, "help": _help(name, spec, info)}
    if spec.switch is not None:
        switches: dict[str, Any] = {
            "on": "store_true",
            "off": "store_false",
            "both": argparse.BooleanOptionalAction,
        }
        options["action"] = switches[spec.switch]
    else:
        kind, choices = flag_kind(info)
        options |= {"choices": choices, "metavar": spec.metavar}
        options["action"] = "append" if spec.repeat else "store"
        if kind is not None:
            options["type"] = kind
    target.add_argument(spec.option(name), **options)


def setting_parents() -> dict[str, argparse.ArgumentParser]:
    """Each setting flag as a parent parser of its own, by field name: a command takes the flags
    it needs with ``parents=[...]``, and argparse shares their one action between commands."""
    parents = {}
    for name, spec in SETTING_FLAGS.items():
        parents[name] = argparse.ArgumentParser(add_help=False)
        _add(parents[name], name, spec)
    return parents


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment and .env first, then any setting flag the user gave."""
    overrides: dict[str, Any] = {}
    for name, spec in SETTING_FLAGS.items():
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = shlex.join(value) if spec.repeat else value
    if overrides.get("speakers") is False and overrides.get("voices_dir") is not None:
        raise ConfigError("--voices-dir and --no-speakers together: the voices would never be used")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
