"""Languages for full-text search: a video's language → a PostgreSQL text-search configuration, and
the configuration(s) a query is parsed with.

Each stored segment's ``tsvector`` is made with its video's configuration (German stems for a German
video, ``simple`` for a language PostgreSQL has no stemmer for). A query is parsed with the
configuration ``--lang`` names; without it, with the language detected from the query's words
among the languages stored (py3langid, restricted to those), when the detector is confident;
otherwise with every configuration stored, each row matched in its own.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Collection, Mapping
from typing import Any

from ytingest.errors import ConfigError

# ISO 639-1 (as Whisper names languages) -> PostgreSQL 18's built-in snowball configurations.
# The migration that added ``segments.ts_config`` (db/schema.py) holds a copy of this mapping in the
# ``text_search_languages`` table, where the stored rows' configurations are computed: a change here
# needs a new migration that updates the table (tests/integration/test_languages_db.py compares them).
TEXT_SEARCH_CONFIGS: dict[str, str] = {
    "ar": "arabic",
    "ca": "catalan",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "et": "estonian",
    "eu": "basque",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "ne": "nepali",
    "nl": "dutch",
    "nn": "norwegian",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}
SIMPLE = "simple"  # no stemming, no stop words: the configuration of every other language
CONFIGS = frozenset({*TEXT_SEARCH_CONFIGS.values(), SIMPLE})
UNKNOWN_LANGUAGE_CONFIG = "english"  # rows stored before languages were recorded (tiny.en: English)
# a detected language counts only at this probability (py3langid's, normalised over the languages
# stored); below it the query is searched in every stored configuration
MIN_CONFIDENCE = 0.9
_CODE = re.compile(r"^[a-z]{2,3}(?:[-_][a-z0-9]+)*$")


def base_code(language: str) -> str:
    """``de-AT`` / ``pt_BR`` / ``DE`` → ``de`` / ``pt`` / ``de``."""
    return re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]


def ts_config(language: str | None) -> str:
    """The text-search configuration for a video's stored language (None: English, as before)."""
    if language is None or not language.strip():
        return UNKNOWN_LANGUAGE_CONFIG
    return TEXT_SEARCH_CONFIGS.get(base_code(language), SIMPLE)


def config_for_lang(value: str) -> str:
    """The configuration a ``--lang`` value names: an ISO 639 code (``de``, ``pt-BR``; a language
    without a stemmer → ``simple``) or a configuration's name (``german``, ``simple``).
    ConfigError for anything else."""
    text = value.strip().lower()
    if text == SIMPLE or text in TEXT_SEARCH_CONFIGS.values():
        return text
    if _CODE.match(text) and (base_code(text) in TEXT_SEARCH_CONFIGS or base_code(text) in _whisper_codes()):
        return ts_config(text)
    raise ConfigError(
        f"unknown language {value!r}: use an ISO 639-1 code (de, es, fr, ...) or a text-search"
        " configuration (german, spanish, simple, ...)"
    )


def config_literal(config: str) -> str:
    """``config`` as an SQL literal of type regconfig; only a configuration of the mapping (or
    ``simple``) is accepted, so no other text reaches the SQL."""
    if config not in CONFIGS:
        raise ValueError(f"not a text-search configuration of ytingest.languages: {config!r}")
    return f"'{config}'::regconfig"


def query_configs(lang: str | None, words: str, stored: Mapping[str, str]) -> tuple[str, ...]:
    """The configurations a query's words are parsed with. ``stored``: each stored language (ISO
    code) -> its configuration. ``lang`` given: its configuration. One configuration stored: that
    one. Else the language detected among the stored ones, when confident; else all of them."""
    if lang is not None:
        return (config_for_lang(lang),)
    configs = tuple(sorted(set(stored.values()))) or (UNKNOWN_LANGUAGE_CONFIG,)
    if len(configs) == 1:
        return configs
    code = detect_language(words, stored)
    return (stored[code],) if code is not None else configs


def detect_language(text: str, candidates: Collection[str]) -> str | None:
    """The language of ``text`` among ``candidates`` (ISO codes), or None when the detector is not
    confident (below MIN_CONFIDENCE), knows fewer than two of them, or the text has no letters."""
    if not any(ch.isalpha() for ch in text):
        return None
    known = sorted(set(candidates) & _identifier_labels())
    if len(known) < 2:
        return None
    code, probability = _identifier(tuple(known)).classify(text)
    return str(code) if probability >= MIN_CONFIDENCE else None


@functools.cache
def _identifier_labels() -> frozenset[str]:
    return frozenset(_full_identifier().labels)


@functools.cache
def _full_identifier() -> Any:
    """py3langid's naive Bayes model (shipped in the package; ~2 s to load, once per process),
    with normalised probabilities."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@functools.lru_cache(maxsize=16)
def _identifier(languages: tuple[str, ...]) -> Any:
    """The model restricted to ``languages`` (a shallow copy: the weights are shared)."""
    identifier = copy.copy(_full_identifier())
    identifier.set_languages(list(languages))
    return identifier


@functools.cache
def _whisper_codes() -> frozenset[str]:
    """Every language code Whisper detects (a valid ``--lang``, ``simple`` when not stemmed)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)
