"""Backends by name: ``ASR_BACKEND``, ``EMBED_BACKEND`` and ``SPEAKER_BACKEND`` pick what implements
each model port (``ytingest/ports.py``).

A backend is a factory ``(settings) -> port``, written ``module:attribute`` and imported only when
it is chosen, so an uninstalled extra costs nothing until named. The built-in ones are listed here;
a third party's package adds its own under the ``ytingest.backends`` entry-point group, named
``<kind>.<name>``, e.g. in its ``pyproject.toml``:

    [project.entry-points."ytingest.backends"]
    "asr.parakeet" = "ytingest_parakeet:from_settings"

and ``ASR_BACKEND=parakeet`` selects it. Factories load weights: call them in an executor.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

from ytingest.config import Settings
from ytingest.errors import ConfigError
from ytingest.ports import Embedder, SpeakerEncoder, Transcriber

Kind = Literal["asr", "embed", "speaker"]
GROUP = "ytingest.backends"
SETTING: dict[Kind, str] = {"asr": "ASR_BACKEND", "embed": "EMBED_BACKEND", "speaker": "SPEAKER_BACKEND"}
BUILTIN: dict[Kind, dict[str, str]] = {
    "asr": {"faster-whisper": "ytingest.models.asr:WhisperTranscriber.from_settings"},
    "embed": {"sentence-transformers": "ytingest.models.embedder:SentenceEmbedder.from_settings"},
    "speaker": {
        "resemblyzer": "ytingest.models.ge2e:Ge2eEncoder.from_settings",
        "pyannote": "ytingest.models.pyannote_encoder:PyannoteEncoder.from_settings",
    },
}
_PORT: dict[Kind, type] = {"asr": Transcriber, "embed": Embedder, "speaker": SpeakerEncoder}


def available(kind: Kind) -> dict[str, EntryPoint]:
    """Every backend of ``kind`` by name: the built-in ones, then the installed entry points (a
    third party's name shadows no built-in one)."""
    found = {name: EntryPoint(name, value, GROUP) for name, value in BUILTIN[kind].items()}
    for ep in entry_points(group=GROUP):
        prefix, _, name = ep.name.partition(".")
        if prefix == kind and name and name not in BUILTIN[kind]:
            found[name] = ep
    return found


def factory(kind: Kind, name: str) -> Callable[[Settings], Any]:
    """The factory of backend ``name``, imported now; a ConfigError names the choices or what is
    missing."""
    choices = available(kind)
    if name not in choices:
        raise ConfigError(
            f"unknown {SETTING[kind]} {name!r}: choose from {', '.join(sorted(choices))} "
            f"(a package adds one under the {GROUP!r} entry-point group as '{kind}.<name>')"
        )
    try:
        loaded = choices[name].load()
    except ImportError as exc:
        raise ConfigError(f"{SETTING[kind]}={name} cannot be imported: {exc}") from None
    if not callable(loaded):
        raise ConfigError(f"{SETTING[kind]}={name}: {choices[name].value} is not a factory")
    return loaded  # type: ignore[no-any-return]


def build(kind: Kind, settings: Settings, name: str | None = None) -> Any:
    """Backend ``name`` (default: the one the settings choose) built from ``settings``; it must
    implement its port."""
    name = name or str(getattr(settings, SETTING[kind].lower()))  # ASR_BACKEND: settings.asr_backend
    built = factory(kind, name)(settings)
    if not isinstance(built, _PORT[kind]):
        raise ConfigError(
            f"{SETTING[kind]}={name} built a {type(built).__name__}, not a {_PORT[kind].__name__}"
        )
    return built


def transcriber(settings: Settings) -> Transcriber:
    """The ASR backend ``ASR_BACKEND`` names. Executor only."""
    made: Transcriber = build("asr", settings)
    return made


def embedder(settings: Settings) -> Embedder:
    """The text embedder ``EMBED_BACKEND`` names. Executor only."""
    made: Embedder = build("embed", settings)
    return made


def speaker_encoder(settings: Settings) -> SpeakerEncoder:
    """The speaker encoder ``SPEAKER_BACKEND`` names. Executor only."""
    made: SpeakerEncoder = build("speaker", settings)
    return made
