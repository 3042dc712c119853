"""The configuration page's tables, generated from ``ytingest.config.Settings`` (an mkdocs hook).

``docs/configuration.md`` holds the prose and the ``MARKER`` line; at build time (``make docs``) the
marker becomes one table per section of ``Settings``: each setting's environment variable, type,
default and description, so the page cannot drift from the code. Sections and their order are the
comment headings in ``ytingest/config.py``. A description is the field's ``description=``, else the
comment above its line in ``.env.example``, else its comment in ``ytingest/config.py``.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import tokenize
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from ytingest import config as config_module
from ytingest.config import Settings

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
MARKER = "<!-- settings: generated from ytingest.config.Settings by docs/hooks/config_page.py -->"

_KINDS: dict[object, str] = {
    int: "integer",
    float: "number",
    bool: "true / false",
    str: "text",
    Path: "path",
    SecretStr: "text (secret)",
}


def env_name(name: str, settings: type[Settings] = Settings) -> str:
    """The environment variable that sets the field ``name``."""
    return f"{settings.model_config.get('env_prefix', '')}{name}".upper()


def type_text(tp: Any) -> str:
    """A field's annotation in words: ``one of `a`, `b` ``, ``integer or unset``, ``list of path``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{value}`" for value in args)
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin in (typing.Union, types.UnionType):
        rest = [arg for arg in args if arg is not type(None)]
        text = " or ".join(type_text(arg) for arg in rest)
        return f"{text} or unset" if len(rest) < len(args) else text
    if origin in (tuple, list):
        return f"list of {type_text(args[0])}" if args else "list"
    return _KINDS.get(tp, getattr(tp, "__name__", str(tp)))


def _value_text(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple | list):
        return "`" + ",".join(str(v) for v in value) + "`" if value else "empty"
    return f"`{value}`" if value != "" else '`""`'


def _bounds_text(info: FieldInfo) -> str:
    words = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "pattern": "matches"}
    parts = []
    for meta in info.metadata:
        for attr, word in words.items():
            bound = getattr(meta, attr, None)
            if bound is not None:
                parts.append(f"{word} `{bound}`")
    return ", ".join(parts)


def _comments(source: str) -> dict[int, str]:
    """Line number → the text of the comment on it."""
    found = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = token.string.lstrip("#").strip()
    return found


class _Field(typing.NamedTuple):
    name: str
    section: str
    comment: str
    factory: str  # the source of its default_factory, if any


def _source_fields(settings: type[Settings]) -> list[_Field]:
    """The fields in the order ``config.py`` declares them, each with its section and comments."""
    source = inspect.getsource(inspect.getmodule(Settings) or config_module)
    lines = source.splitlines()
    comments = _comments(source)
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == Settings.__name__)
    fields: list[_Field] = []
    section = ""
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        row = node.lineno - 1
        while row >= 1 and lines[row - 1].strip().startswith("#"):
            above.insert(0, comments[row])
            row -= 1
        own = [comments[r] for r in range(node.lineno, (node.end_lineno or node.lineno) + 1) if r in comments]
        if above and (row < 1 or not lines[row - 1].strip()):  # a comment block after a blank line: a heading
            section, above = " ".join(above), []
        factory = ""
        if isinstance(node.value, ast.Call):
            for keyword in node.value.keywords:
                if keyword.arg == "default_factory":
                    factory = ast.get_source_segment(source, keyword.value) or ""
                    factory = re.sub(r"^lambda\s*:\s*", "", factory)
        fields.append(_Field(node.target.id, section, " ".join(above + own), factory))
    known = {f.name for f in fields}
    fields += [_Field(name, "Other", "", "") for name in settings.model_fields if name not in known]
    return [f for f in fields if f.name in settings.model_fields]


def env_example_descriptions(text: str) -> dict[str, str]:
    """``# NAME=value`` lines of ``.env.example`` → the comment block above them. A setting right
    below another one shares its block when that block names it (``RETRY_BASE_S * 2^n, at most
    RETRY_MAX_S``)."""
    found: dict[str, str] = {}
    block: list[str] = []
    previous = ""
    for line in text.splitlines():
        stripped = line.strip()
        setting = re.match(r"^#\s*([A-Z][A-Z0-9_]*)=", stripped)
        if not stripped:
            block, previous = [], ""
        elif setting:
            name = setting.group(1)
            if block:
                found[name] = previous = " ".join(block)
            elif previous and re.search(rf"\b{name}\b", previous):
                found[name] = previous
            else:
                previous = ""
            block = []
        elif stripped.startswith("#") and not stripped.startswith("# ---"):
            block.append(stripped.lstrip("#").strip())
    return found


def _text(text: str) -> str:
    """Comment text as Markdown: ``<`` and ``>`` outside code spans are HTML entities (``<STAGE>``)."""
    parts = " ".join(text.split()).split("`")
    escaped = [p if i % 2 else p.replace("<", "&lt;").replace(">", "&gt;") for i, p in enumerate(parts)]
    return "`".join(escaped)


def _cell(text: str) -> str:
    return _text(text).replace("|", "\\|")


def _heading(section: str) -> tuple[str, str]:
    """``"speakers: on by default (...)"`` → ``("Speakers", "on by default (...)")``."""
    title, _, intro = section.partition(": ")
    title = title.strip() or "Settings"
    return title[0].upper() + title[1:], intro.strip()


def settings_markdown(settings: type[Settings] = Settings, env_example: str | None = None) -> str:
    """Every field of ``settings`` as Markdown tables, one per section of ``config.py``."""
    if env_example is None:
        env_example = ENV_EXAMPLE.read_text(encoding="utf-8") if ENV_EXAMPLE.exists() else ""
    from_env = env_example_descriptions(env_example)
    out: list[str] = []
    section = None
    for field in _source_fields(settings):
        info = settings.model_fields[field.name]
        if field.section != section:
            section = field.section
            title, intro = _heading(section)
            out += ["", f"### {title}", ""]
            if intro:
                out += [_text(intro[0].upper() + intro[1:] + ("" if intro.endswith(".") else ".")), ""]
            out += ["| variable | type | default | description |", "|---|---|---|---|"]
        name = env_name(field.name, settings)
        described = info.description or from_env.get(name) or field.comment
        description = described or "(no description yet)"
        if info.default_factory is not None:
            default = f"computed: `{field.factory or getattr(info.default_factory, '__name__', '?')}`"
        else:
            default = _value_text(info.default)
        kind = type_text(info.annotation)
        bounds = _bounds_text(info)
        if bounds:
            kind += f" ({bounds})"
        out.append(f"| `{name}` | {_cell(kind)} | {_cell(default)} | {_cell(description)} |")
    return "\n".join(out).strip("\n") + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """mkdocs hook: the configuration page gets its tables; without its marker the build fails."""
    if page.file.src_uri == "configuration.md" and MARKER not in markdown:
        raise ValueError(f"docs/configuration.md lost its marker line {MARKER!r}")
    return markdown.replace(MARKER, settings_markdown())


def readme_link_errors(text: str, root: Path = ROOT) -> list[str]:
    """The README's relative links whose file does not exist (the README is not part of the site,
    so mkdocs' --strict does not see its links)."""
    errors = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#", target):
            continue
        if not (root / target.split("#", 1)[0]).exists():
            errors.append(target)
    return errors


def on_pre_build(config: Any) -> None:
    """mkdocs hook: a broken relative link in README.md fails the build too."""
    from mkdocs.exceptions import PluginError

    broken = readme_link_errors((ROOT / "README.md").read_text(encoding="utf-8"))
    if broken:
        raise PluginError(f"README.md links to files that do not exist: {', '.join(broken)}")
