"""Which yt-dlp plugins a child loads: the ones installed for the Python that runs yt-dlp, the ones
in YTDLP_PLUGIN_DIRS, and the user's own yt-dlp plugin folders only with YTDLP_USER_PLUGINS=true.

How yt-dlp searches (2026.11.23, ``yt_dlp/plugins.py``, ``options.py``, ``__init__.py``):

- ``plugin_dirs`` starts as ``['default']``. ``--no-plugin-dirs`` sets it to ``[]``, and then no
  plugin loads at all (``load_plugins`` returns at once), pip-installed ones included.
  ``--plugin-dirs DIR`` appends DIR (``default`` names the default search).
- ``default`` (``default_plugin_paths``) is the ``plugins`` folder of each yt-dlp config folder
  (``~/.config/yt-dlp``, ``%APPDATA%/yt-dlp``, ``~/.yt-dlp``, ``/etc/yt-dlp``), the
  ``yt-dlp-plugins`` folders beside yt-dlp and in ``~/.config``, ``~``, ``/etc``, and then every
  ``sys.path`` entry: site-packages (where pip puts plugins), PYTHONPATH, and the working folder.
- A DIR is searched one level down (``candidate_plugin_paths``): ``DIR/*/yt_dlp_plugins``, each
  plugin a folder or zip of its own, as in the ``plugins`` folders. A missing DIR is a traceback.

So a child gets ``--no-plugin-dirs`` and one ``--plugin-dirs`` per folder: for each ``sys.path``
entry of this Python that holds a ``yt_dlp_plugins`` package, the folder above it (for
site-packages that folder holds only site-packages); then each YTDLP_PLUGIN_DIRS folder. The
working folder is not searched (yt-dlp's default would load a ``yt_dlp_plugins`` found there), and
an entry whose folder above holds a plugin root not on ``sys.path`` is skipped (it would load that
one too). With YTDLP_PATH (another yt-dlp, another Python) this Python's path says nothing: name
the folders in YTDLP_PLUGIN_DIRS, or opt in to yt-dlp's whole default search.
"""

from __future__ import annotations

import os
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

import structlog

from ytingest.config import Settings

PACKAGE = "yt_dlp_plugins"  # yt-dlp's plugin namespace package (plugins.PACKAGE_NAME)
_ARCHIVES = (".zip", ".egg", ".whl")  # sys.path entries yt-dlp also reads plugins from

log = structlog.get_logger(__name__)


def plugin_args(settings: Settings) -> list[str]:
    """The plugin options of every yt-dlp child: ``--no-plugin-dirs`` and the folders to search."""
    folders: list[str] = []
    if settings.ytdlp_user_plugins:
        folders.append("default")  # yt-dlp's own search: its config folders and its sys.path
    elif settings.ytdlp_path is None:  # python -m yt_dlp: this very Python and its path
        folders += [str(p) for p in path_plugin_folders(sys.path)]
    folders += [str(p) for p in settings.ytdlp_plugin_dirs if str(p) not in folders]
    args = ["--no-plugin-dirs"]
    for folder in folders:
        args += ["--plugin-dirs", folder]
    return args


def path_plugin_folders(entries: Iterable[str], cwd: Path | None = None) -> list[Path]:
    """The ``--plugin-dirs`` folders that make yt-dlp read the ``yt_dlp_plugins`` packages of these
    ``sys.path`` entries and nothing else: each root's parent, once, in path order."""
    here = (cwd or Path.cwd()).resolve()
    roots: list[Path] = []
    for entry in entries:
        if not entry:
            continue
        path = Path(entry).resolve()
        if path != here and path not in roots and _holds_plugins(path):
            roots.append(path)
    folders: list[Path] = []
    for root in roots:
        parent = root.parent
        if parent in folders:
            continue
        strangers = [p for p in _children(parent) if p not in roots and _holds_plugins(p)]
        if strangers:
            log.warning("ytdlp_plugins_skipped", path=str(root), reason="its folder holds other plugins")
            continue
        folders.append(parent)
    return folders


def _holds_plugins(path: Path) -> bool:
    """A folder with a ``yt_dlp_plugins`` package, or an archive holding one (yt-dlp reads both)."""
    try:
        if path.is_dir():
            return (path / PACKAGE).is_dir()
        if path.suffix in _ARCHIVES and path.is_file():
            with zipfile.ZipFile(path) as archive:
                return any(name.startswith(f"{PACKAGE}/") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        pass
    return False


def _children(folder: Path) -> list[Path]:
    try:
        return [child.resolve() for child in folder.iterdir()]
    except OSError:
        return []


def user_plugin_folders() -> list[Path]:
    """yt-dlp's own plugin folders for this user and machine (``default_plugin_paths`` without
    ``sys.path``), for the doctor's advice; only those that exist."""
    home = Path.home()
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    appdata = [Path(os.environ["APPDATA"])] if os.environ.get("APPDATA") else []
    candidates = [
        *(base / "yt-dlp" / "plugins" for base in (config, *appdata)),
        home / ".yt-dlp" / "plugins",
        Path("/etc/yt-dlp/plugins"),
        *(base / "yt-dlp-plugins" for base in (config, *appdata, home, Path("/etc"))),
    ]
    return [c for c in candidates if c.is_dir()]
