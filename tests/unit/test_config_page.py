"""The docs site's configuration page is generated from ``Settings`` (docs/hooks/config_page.py):
every field is listed with its environment variable, type, default and a description."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from pydantic import Field

from ytingest.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("config_page", ROOT / "docs" / "hooks" / "config_page.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hook = _load_hook()


def _rows(markdown: str) -> dict[str, list[str]]:
    """``| `NAME` | type | default | description |`` rows by variable name."""
    rows = {}
    for line in markdown.splitlines():
        match = re.match(r"^\| `([A-Z0-9_]+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in re.split(r"(?<!\\)\|", match.group(2))]
    return rows


def test_every_setting_is_listed_once_with_a_description() -> None:
    page = hook.settings_markdown()
    rows = _rows(page)
    expected = {name.upper() for name in Settings.model_fields}
    assert set(rows) == expected
    assert sum(line.startswith("| `") for line in page.splitlines()) == len(expected)  # none twice
    undescribed = sorted(name for name, cells in rows.items() if cells[2] == "(no description yet)")
    assert not undescribed, f"describe these in .env.example: {undescribed}"


def test_rows_show_the_real_defaults_types_and_bounds() -> None:
    rows = _rows(hook.settings_markdown())
    fields = Settings.model_fields
    assert rows["IO_WORKERS"][:2] == ["integer (≥ `1`, ≤ `256`)", f"`{fields['io_workers'].default}`"]
    assert rows["ASR_DEVICE"][0] == "one of `auto`, `cpu`, `cuda`"
    assert rows["DATABASE_URL"][:2] == ["text (secret) or unset", "unset"]
    assert rows["SPEAKERS"][1] == "`true`"
    assert rows["DECODE_WORKERS"][1] == "computed: `_default_decode_workers()`"
    assert "Concurrent yt-dlp downloads" in rows["IO_WORKERS"][2]  # from .env.example


def test_env_example_describes_only_real_settings() -> None:
    described = hook.env_example_descriptions(hook.ENV_EXAMPLE.read_text(encoding="utf-8"))
    assert described and {hook.env_name(n) for n in Settings.model_fields} >= set(described)


def test_a_new_setting_appears_with_its_description() -> None:
    class More(Settings):
        brand_new_knob: int = Field(3, ge=1, description="A knob added | later.")

    rows = _rows(hook.settings_markdown(More, env_example=""))
    assert rows["BRAND_NEW_KNOB"] == ["integer (≥ `1`)", "`3`", "A knob added \\| later."]
    assert len(rows) == len(Settings.model_fields) + 1


def test_env_example_blocks_are_shared_only_when_they_name_the_setting() -> None:
    text = "# Backoff: A_S * 2^n, at most B_S.\n# A_S=1\n# B_S=60\n# C_S=3\n\n# D_S=4\n"
    assert hook.env_example_descriptions(text) == {
        "A_S": "Backoff: A_S * 2^n, at most B_S.",
        "B_S": "Backoff: A_S * 2^n, at most B_S.",
    }


def test_the_hook_fills_the_real_page_and_refuses_a_page_without_its_marker() -> None:
    page = SimpleNamespace(file=SimpleNamespace(src_uri="configuration.md"))
    source = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    built = hook.on_page_markdown(source, page, None, None)
    assert hook.MARKER not in built
    assert set(_rows(built)) == {name.upper() for name in Settings.model_fields}
    with pytest.raises(ValueError, match="marker"):
        hook.on_page_markdown("# Configuration\n", page, None, None)


def test_readme_links_point_at_files_that_exist() -> None:
    assert hook.readme_link_errors((ROOT / "README.md").read_text(encoding="utf-8")) == []
    links = "[a](docs/nope.md) [b](https://x.org) [c](#here) [d](docs/SCALING.md#x)"
    assert hook.readme_link_errors(links) == ["docs/nope.md"]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "hooks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gfm = _load("gfm_lists")


def test_lists_under_a_paragraph_get_the_blank_line_python_markdown_needs() -> None:
    assert gfm.gfm_lists("Text:\n- a\n  more a\n- b\n\nAfter.") == "Text:\n\n- a\n    more a\n- b\n\nAfter."


def test_nested_lists_move_to_four_spaces_and_their_parent_list_goes_on() -> None:
    source = "1. one\n   - x\n     more x\n   - y\n2. two\n   text:\n   - z"
    assert gfm.gfm_lists(source) == "1. one\n    - x\n        more x\n    - y\n\n2. two\n    text:\n\n    - z"


def test_code_and_numbers_inside_a_paragraph_are_left_alone() -> None:
    for source in ("```\nText:\n- a\n   - b\n```", "In\n2026. a year", "- a\n\nNext paragraph."):
        assert gfm.gfm_lists(source) == source
