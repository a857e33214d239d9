"""Reading a claims YAML file safely: size, bracket depth, aliases, node count and nesting
are checked before PyYAML's safe constructor builds anything (issue 14, docs/FUZZING.md).

A billion-laughs file is a few lines of shared references whose repr is exponential; 50 000
open brackets made PyYAML's scanner take 31 s of CPU; a 6000-digit integer raised a bare
ValueError. All are :class:`ClaimsError` naming the file here.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import yaml

__all__ = ["ClaimsError", "MAX_CLAIMS_BYTES", "MAX_CLAIMS_NODES", "MAX_CLAIMS_DEPTH"]


class ClaimsError(ValueError):
    """A claims file or a measured table is malformed; the message names the file and entry."""


#: Largest claims file read (bytes): the largest shipped file is ~50 KB; 1 MiB is 20x that.
MAX_CLAIMS_BYTES = 2**20
#: Most YAML nodes in a claims file (~8 000 in the largest shipped one).
MAX_CLAIMS_NODES = 200_000
#: Deepest nesting (shipped files nest 4 levels: top, claims, entry, list value).
MAX_CLAIMS_DEPTH = 32


def _raw_values(root: Any) -> dict[int, str]:
    """Printed text of each claim's `value`, by claim position (from the composed node graph)."""
    out: dict[int, str] = {}
    if not isinstance(root, yaml.MappingNode):
        return out
    for key, node in root.value:
        if getattr(key, "value", None) == "claims" and isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                if isinstance(item, yaml.MappingNode):
                    for k, v in item.value:
                        if getattr(k, "value", None) == "value" and isinstance(v, yaml.ScalarNode):
                            out[i] = v.value
    return out


def _check_graph(path: str, root: Any) -> None:
    """Refuse aliases (a billion-laughs file is a few lines of shared references whose repr
    is exponential), more than MAX_CLAIMS_NODES nodes or nesting deeper than MAX_CLAIMS_DEPTH.
    Iterative, so a deep file cannot overflow the stack here."""
    seen: set[int] = set()
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            raise ClaimsError(f"{path}: YAML anchors/aliases are not allowed in a claims file")
        seen.add(id(node))
        if len(seen) > MAX_CLAIMS_NODES:
            raise ClaimsError(f"{path}: more than {MAX_CLAIMS_NODES} YAML nodes")
        if depth > MAX_CLAIMS_DEPTH:
            raise ClaimsError(f"{path}: nested deeper than {MAX_CLAIMS_DEPTH} levels")
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend((part, depth + 1) for pair in node.value for part in pair)


def _flow_depth(text: str) -> int:
    """Deepest running count of open flow brackets ([ and {) in the raw text (quotes not
    honoured, so it can only over-count brackets left open inside strings)."""
    codes = np.frombuffer(text.encode("utf-8"), np.uint8)
    step = (np.isin(codes, (91, 123)).astype(np.int64) - np.isin(codes, (93, 125)))
    return int(np.cumsum(step).max()) if step.size else 0


@functools.lru_cache(maxsize=32)
def _parse(path: str, mtime_ns: int, size: int) -> tuple[Any, dict[int, str]]:
    """Parse a claims file once per (path, mtime, size): pure-Python YAML is slow.

    Safe constructors only (``yaml.SafeLoader``: no Python objects), after the size, node
    and alias checks; every failure is a ClaimsError naming the file.
    """
    if size > MAX_CLAIMS_BYTES:
        raise ClaimsError(f"{path}: {size} bytes, above the {MAX_CLAIMS_BYTES} allowed for a claims file")
    try:
        text = Path(path).read_bytes()[: MAX_CLAIMS_BYTES + 1].decode("utf-8")
    except OSError as exc:
        raise ClaimsError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise ClaimsError(f"{path}: not UTF-8 text ({exc})") from exc
    if _flow_depth(text) > MAX_CLAIMS_DEPTH:  # PyYAML's scanner is quadratic in open brackets
        raise ClaimsError(f"{path}: brackets nested deeper than {MAX_CLAIMS_DEPTH} levels")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is None:
            return None, {}
        _check_graph(path, root)
        data = yaml.SafeLoader("").construct_document(root)
        return data, _raw_values(root)
    except yaml.YAMLError as exc:
        raise ClaimsError(f"{path}: not valid YAML: {exc}") from exc
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. an int of 5000 digits
        raise ClaimsError(f"{path}: a value cannot be read ({type(exc).__name__}: {str(exc)[:200]})") from exc
    except RecursionError:
        raise ClaimsError(f"{path}: nested too deeply to parse") from None
