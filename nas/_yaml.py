"""YAML in and out: safe loading with clear errors, atomic writes, compact flow-style rows."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nas._errors import NasError, SpecError
from nas._files import write_text_atomic

# libyaml's C implementation of the safe loader when present (~5x faster on latency tables); same safety.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FlowMap(dict):
    """A mapping that is written on one line (``{a: 1, b: 2}``), e.g. one layer of a network."""


class FlowList(list):
    """A list written on one line (``[1, 2, 3]``), e.g. one row of a latency table."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """libyaml's emitter when present (3x faster on a config; the same text)."""


def _represent_flow_map(dumper: yaml.SafeDumper, data: FlowMap) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


def _represent_flow_list(dumper: yaml.SafeDumper, data: FlowList) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(FlowMap, _represent_flow_map)
_Dumper.add_representer(FlowList, _represent_flow_list)


MAX_BYTES = 64 * 2**20  # the shipped latency tables are ~0.2 MB; a bigger file is not one of ours
MAX_NESTING = 1000  # brackets open at once: libyaml's parser crashes the process (SIGSEGV) past ~50,000
MAX_NODES = 2_000_000  # values in a file with its aliases expanded; the shipped tables have ~50,000


def read_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a YAML file that must hold a mapping at the top level (``yaml.safe_load`` only)."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_BYTES:
            raise NasError(
                f"{path}: {path.stat().st_size / 2**20:.0f} MiB, over the {MAX_BYTES // 2**20} MiB a nas YAML file"
                " may have; is it the right file?"
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NasError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NasError(f"{path}: is a folder, expected a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NasError(f"{path}: cannot read ({exc})") from None
    return parse_mapping(text, str(path))


def parse_mapping(text: str, source: str) -> dict[str, Any]:
    """YAML text that must hold a mapping, from ``source`` (named in errors). Text whose aliases expand
    past ``MAX_NODES`` values is refused before it is built: a 2 KB file of nested aliases ("billion
    laughs") expands to gigabytes in anything that walks or prints it."""
    if (depth := _flow_depth(text)) > MAX_NESTING:
        raise NasError(f"{source}: brackets nested {depth} deep, over {MAX_NESTING}; flatten it")
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and (size := _expanded_size(node)) > MAX_NODES:
            raise NasError(
                f"{source}: its aliases (*name) expand to {size:.3g} values, over {MAX_NODES:,}; write them out"
            )
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise NasError(f"{source}: not valid YAML{where} ({problem}); fix the syntax") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise SpecError(source, "", f"the file is {kind}; expected a YAML mapping (key: value lines)")
    return data


def _flow_depth(text: str) -> int:
    """The deepest nesting of flow brackets ([ and {), quotes ignored: an upper bound is enough."""
    if text.count("[") + text.count("{") <= MAX_NESTING:
        return 0
    codes = np.frombuffer(text.encode("utf-8", "replace"), dtype=np.uint8)
    step = np.isin(codes, _OPEN).astype(np.int64) - np.isin(codes, _CLOSE)
    return int(np.cumsum(step).max())


_OPEN, _CLOSE = np.frombuffer(b"[{", dtype=np.uint8), np.frombuffer(b"]}", dtype=np.uint8)


def _expanded_size(root: yaml.Node) -> int:
    """Values under ``root`` with every alias expanded, counting each shared node once per use (without
    expanding: each distinct node is sized once, children before parents)."""
    size: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        children = _children(node)
        if children_done or not children:
            size[id(node)] = 1 + sum(size[id(child)] for child in children)
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in size)
    return size[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def dump(data: Any) -> str:
    """Serialize with key order kept and FlowMap rows on one line each."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def write_yaml(path: str | os.PathLike[str], data: Any) -> None:
    write_text_atomic(path, dump(data))
