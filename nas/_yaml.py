"""YAML in and out: safe loading with clear errors, atomic writes, compact flow-style rows."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from nas._errors import NasError, SpecError
from nas._files import write_text_atomic

# libyaml's C implementation of the safe loader when present (~5x faster on latency tables); same safety.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FlowMap(dict):
    """A mapping that is written on one line (``{a: 1, b: 2}``), e.g. one layer of a network."""


class FlowList(list):
    """A list written on one line (``[1, 2, 3]``), e.g. one row of a latency table."""


class _Dumper(yaml.SafeDumper):
    pass


def _represent_flow_map(dumper: yaml.SafeDumper, data: FlowMap) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


def _represent_flow_list(dumper: yaml.SafeDumper, data: FlowList) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(FlowMap, _represent_flow_map)
_Dumper.add_representer(FlowList, _represent_flow_list)


def read_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a YAML file that must hold a mapping at the top level (``yaml.safe_load`` only)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NasError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NasError(f"{path}: is a folder, expected a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NasError(f"{path}: cannot read ({exc})") from None
    try:
        data = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise NasError(f"{path}: not valid YAML{where} ({problem}); fix the syntax") from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise SpecError(str(path), "", f"the file is {kind}; expected a YAML mapping (key: value lines)")
    return data


def dump(data: Any) -> str:
    """Serialize with key order kept and FlowMap rows on one line each."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def write_yaml(path: str | os.PathLike[str], data: Any) -> None:
    write_text_atomic(path, dump(data))
