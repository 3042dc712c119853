"""A video's language -> its text-search configuration, ``--lang`` values, and the language a
query's words are parsed in (py3langid among the stored languages; every one when unsure)."""

from __future__ import annotations

import pytest

from ytingest.errors import ConfigError
from ytingest.languages import (
    SIMPLE,
    TEXT_SEARCH_CONFIGS,
    config_for_lang,
    config_literal,
    detect_language,
    query_configs,
    ts_config,
)
from ytingest.search import SearchQuery

STORED = {"en": "english", "de": "german", "es": "spanish"}


@pytest.mark.parametrize(
    ("language", "config"),
    [
        ("de", "german"),
        ("DE", "german"),
        ("de-AT", "german"),
        ("pt_BR", "portuguese"),
        ("en", "english"),
        ("no", "norwegian"),
        ("nn", "norwegian"),
        ("ja", SIMPLE),  # no stemmer in PostgreSQL
        ("zh", SIMPLE),
        ("", "english"),  # rows from before languages were recorded: English, as they were searched
        (None, "english"),
    ],
)
def test_a_video_language_maps_to_its_configuration(language: str | None, config: str) -> None:
    """ISO codes (any case, with a region) map to PostgreSQL's stemmer; others to ``simple``."""
    assert ts_config(language) == config


def test_every_mapped_configuration_is_a_snowball_language_name() -> None:
    """The mapping names configurations only (lower-case words), each code two letters."""
    assert all(
        len(code) == 2 and name.isalpha() and name.islower() for code, name in TEXT_SEARCH_CONFIGS.items()
    )


@pytest.mark.parametrize(
    ("value", "config"),
    [("de", "german"), ("German", "german"), ("simple", SIMPLE), ("es-MX", "spanish"), ("ja", SIMPLE)],
)
def test_lang_takes_a_code_or_a_configuration(value: str, config: str) -> None:
    """``--lang`` is an ISO code Whisper knows (unstemmed ones: ``simple``) or a configuration."""
    assert config_for_lang(value) == config


@pytest.mark.parametrize("value", ["klingon", "xx", "de; DROP TABLE x", "", "english2"])
def test_an_unknown_lang_is_a_config_error(value: str) -> None:
    """Anything else is refused with one line, before any database work."""
    with pytest.raises(ConfigError, match="unknown language"):
        config_for_lang(value)
    with pytest.raises(ConfigError, match="unknown language"):
        SearchQuery("bread", lang=value)


def test_lang_wins_over_detection() -> None:
    """A given ``lang`` is used even when the words look like another language."""
    assert query_configs("es", "the old houses of the town", STORED) == ("spanish",)


def test_one_stored_configuration_needs_no_detection() -> None:
    """An English-only database parses every query in English (as before); none stored: English."""
    assert query_configs(None, "die alten Häuser der Stadt", {"en": "english"}) == ("english",)
    assert query_configs(None, "die alten Häuser", {}) == ("english",)


@pytest.mark.parametrize(
    ("words", "config"),
    [
        ("die alten Häuser der Stadt", "german"),
        ("what they said about vector databases", "english"),
        ("lo que dijeron sobre el pan", "spanish"),
    ],
)
def test_a_clear_query_is_parsed_in_its_detected_language(words: str, config: str) -> None:
    """Whole phrases are detected confidently among the stored languages."""
    assert query_configs(None, words, STORED) == (config,)


@pytest.mark.parametrize("words", ["vector databases", "1234", "-", "pgvector"])
def test_an_unsure_query_is_parsed_in_every_stored_configuration(words: str) -> None:
    """Too short or no letters: the detector is below its confidence (or abstains), so every
    stored configuration is searched, each with its own rows."""
    assert query_configs(None, words, STORED) == ("english", "german", "spanish")


def test_detection_only_chooses_among_the_candidates() -> None:
    """French words among English and German candidates: one of those or None, never ``fr``."""
    assert detect_language("les vieilles maisons de la ville", ["en", "de"]) in {"en", "de", None}
    assert detect_language("les vieilles maisons de la ville", ["en", "de", "fr"]) == "fr"
    assert detect_language("die alten Häuser", ["de"]) is None  # nothing to choose between
    assert detect_language("die alten Häuser", ["de", "tlh"]) is None  # tlh: unknown to the model


def test_only_known_configurations_become_sql_literals() -> None:
    """The keyword query names its configuration as a literal: nothing but the mapping's names."""
    assert config_literal("german") == "'german'::regconfig"
    assert config_literal(SIMPLE) == "'simple'::regconfig"
    for bad in ("German", "german'; DROP TABLE segments; --", "pg_catalog.german", ""):
        with pytest.raises(ValueError, match="not a text-search configuration"):
            config_literal(bad)
