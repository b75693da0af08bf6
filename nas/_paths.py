"""Where files live: shipped spaces, reference configs and tables are package data (found through the
installed package, so a plain ``pip install .`` works from any directory); tables and bundles a user
builds go to a user folder; results go under the current directory."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from nas._errors import ArgumentError
from nas._files import file_in_the_way

PACKAGE_DIR = Path(str(files("nas")))
SPACES_DIR = PACKAGE_DIR / "search_spaces"
REFERENCE_DIR = SPACES_DIR / "reference"
TABLES_DIR = PACKAGE_DIR / "latency_tables"
DEFAULT_SPACE = SPACES_DIR / "mobilenetv3.yaml"
SHIPPED_PREFIXES = ("search_spaces", "latency_tables")  # how README and tables name shipped files


def ofa_nets_folder() -> Path | None:
    """OFA's published networks (``ofa_specialized/<name>/net.config``): ``$NAS_OFA_NETS``, else the
    project's ../shared/data copy; None when neither exists. Read from where they are, never copied
    (they carry no licence)."""
    given = os.environ.get("NAS_OFA_NETS")
    folder = Path(given) if given else PACKAGE_DIR.parent.parent / "shared" / "data" / "ofa_specialized_nets" / "nets"
    return folder if folder.is_dir() else None


def reference_configs() -> dict[str, Path]:
    """The shipped reference networks (MobileNetV3-Large/-Small ...), by file stem."""
    return {path.stem: path for path in sorted(REFERENCE_DIR.glob("*.yaml"))}


def user_dir() -> Path:
    """Where nas keeps what a user builds (tables, export bundles): $NAS_HOME, else the XDG data folder."""
    if home := os.environ.get("NAS_HOME"):
        return Path(home)
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "nas"


def user_tables_dir() -> Path:
    """Tables built here by name; one named like a shipped table takes its place (a measured arm64, say)."""
    return user_dir() / "latency_tables"


def runs_dir() -> Path:
    """Default parent of result folders: ``./runs`` in the current directory."""
    return Path.cwd() / "runs"


def shipped(path: str | os.PathLike[str]) -> Path | None:
    """A path written relative to the project (``search_spaces/x.yaml``) that names a shipped file."""
    parts = Path(path).parts
    if not parts or parts[0] not in SHIPPED_PREFIXES:
        return None
    candidate = PACKAGE_DIR.joinpath(*parts)
    return candidate if candidate.is_file() else None


def shipped_name(path: str | os.PathLike[str]) -> str:
    """How a table records a space file: relative to the package for shipped files, else as given."""
    try:
        return str(Path(path).resolve().relative_to(PACKAGE_DIR.resolve()))
    except ValueError:
        return str(path)


def shipped_spaces() -> dict[str, Path]:
    return {path.stem: path for path in sorted(SPACES_DIR.glob("*.yaml"))}


def find_shipped(path: str | os.PathLike[str]) -> Path:
    """``path`` itself when it exists; else the shipped file it names, by project-relative path
    (``search_spaces/ofa_mbv3_w1.2.yaml`` from any directory) or by a space's name (``mobilenetv3``);
    else ``path`` unchanged, for the reader's own "no such file" error."""
    given = Path(path)
    if given.exists():
        return given
    return shipped(given) or shipped_spaces().get(str(path)) or given


def result_folder(out: str | os.PathLike[str] | None, default_name: str) -> Path:
    """A stage's results folder: ``out``, else ``./runs/DEFAULT_NAME``; refused when a file is in the way.
    (Created by the stage when it starts writing, so a refused call leaves nothing behind.)"""
    folder = Path(out) if out is not None else runs_dir() / default_name
    if folder.exists() and not folder.is_dir():
        raise ArgumentError("out", str(folder), "is a file; give a folder for the run's results")
    if (blocker := file_in_the_way(folder)) is not None:
        raise ArgumentError("out", str(folder), f"{blocker} is a file, not a folder; choose another path")
    return folder
