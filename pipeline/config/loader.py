"""YAML in, a validated `RunConfig` out, with every problem located by file and line.

YAML is loaded with the safe loader, and anchors and aliases are refused: an alias bomb (a few
lines of nested aliases) expands into gigabytes. Duplicate keys are refused too, where PyYAML
would silently keep the last one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from pipeline.config.schema import RunConfig
from pipeline.errors import ConfigError, Problem, did_you_mean

__all__ = ["LoadedConfig", "apply_overrides", "load_config", "parse_override"]

Key = tuple[str | int, ...]


class _Refused(yaml.YAMLError):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


MAX_CONFIG_BYTES = 1 << 20
"""A config names inputs, steps and an output: a larger file is not a config (and its text
would be copied into every output's metadata)."""
MAX_DEPTH = 32
"""Nesting a config never needs; deeper documents are refused before they exhaust the stack."""


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, without anchors and aliases, and nested at most :data:`MAX_DEPTH`."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if self.depth >= MAX_DEPTH:
            msg = f"the document is nested more than {MAX_DEPTH} levels deep; a config is not"
            raise _Refused(msg, event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            msg = (
                f"YAML aliases (*{event.anchor}) are not allowed: they can expand a small "
                "file into an enormous one; write the value out"
            )
            raise _Refused(msg, event.start_mark)
        if getattr(event, "anchor", None):
            msg = f"YAML anchors (&{event.anchor}) are not allowed; write the values out"
            raise _Refused(msg, event.start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _parse(text: str, file: str) -> tuple[Any, dict[Key, int]]:
    """The document and the 1-based line of every key path in it."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Key, int] = {}
        problems: list[Problem] = []
        if node is not None:
            _index(node, (), lines, problems, file)
        if problems:
            raise ConfigError(problems)
        data = loader.construct_document(node) if node is not None else None
    except _Refused as exc:
        raise ConfigError([Problem(file, exc.mark.line + 1, "", exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        what = " ".join(s for s in (exc.context, exc.problem) if s)
        where = f" (line {line}, column {col})" if line else ""
        msg = f"YAML syntax error{where}: {what}"
        raise ConfigError([Problem(file, line, "", msg)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(file, None, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    return data, lines


def _index(node: Any, path: Key, lines: dict[Key, int], problems: list[Problem], file: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                problems.append(
                    Problem(
                        file,
                        key_node.start_mark.line + 1,
                        _dotted((*path, key)),
                        "duplicate key; give each key once",
                    )
                )
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _index(value_node, (*path, key), lines, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _index(item, (*path, i), lines, problems, file)


def _dotted(path: Key) -> str:
    return ".".join(str(p) for p in path)


def parse_override(text: str) -> tuple[Key, Any]:
    """``"steps.0.params.cell_size=10"`` -> ``(("steps", 0, "params", "cell_size"), 10)``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        msg = f"--set {text!r}: write KEY=VALUE, such as --set output.path=out/x.zarr"
        raise ConfigError([Problem("--set", None, "", msg)])
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in key.strip().split(".")]
    parsed, _ = _parse(value, f"--set {key.strip()}") if value.strip() else (None, {})
    return tuple(parts), parsed


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> list[Key]:
    """Set each ``KEY=VALUE`` (value parsed as YAML) in ``data``; return the keys set."""
    keys: list[Key] = []
    for text in overrides:
        path, value = parse_override(text)
        node: Any = data
        for depth, part in enumerate(path[:-1]):
            nxt = path[depth + 1]
            if isinstance(node, list) and isinstance(part, int):
                if part >= len(node):
                    msg = f"index {part} is out of range: there are {len(node)} entries"
                    raise ConfigError([Problem("--set", None, _dotted(path[: depth + 1]), msg)])
                node = node[part]
                continue
            if not isinstance(node, dict):
                msg = f"cannot set a key inside a {type(node).__name__}"
                raise ConfigError([Problem("--set", None, _dotted(path[:depth]), msg)])
            if not isinstance(node.get(part), (dict, list)):
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
        last = path[-1]
        settable = isinstance(node, dict) or (
            isinstance(node, list) and isinstance(last, int) and last < len(node)
        )
        if not settable:
            msg = f"cannot set {last!r} here"
            raise ConfigError([Problem("--set", None, _dotted(path), msg)])
        node[last] = value
        keys.append(path)
    return keys


@dataclass
class LoadedConfig:
    """A validated config, the raw data it came from, and where each key was written."""

    config: RunConfig
    """The typed config."""
    path: Path
    """The YAML file."""
    data: dict[str, Any]
    """The document after overrides (what is stored with the output)."""
    lines: dict[Key, int] = field(default_factory=dict)
    """Line of every key path in the file."""
    overridden: list[Key] = field(default_factory=list)
    """Key paths set with ``--set``."""

    @property
    def base_dir(self) -> Path:
        """Directory that relative paths in the config start from."""
        return self.path.parent

    def locate(self, path: Key) -> tuple[str, int | None]:
        """``(file, line)`` of a key: the config line, or ``--set`` for an override."""
        for key in self.overridden:
            if path[: len(key)] == key:
                return ("--set", None)
        for cut in range(len(path), 0, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return (str(self.path), line)
        return (str(self.path), None)

    def problem(self, path: Key, message: str) -> Problem:
        """A :class:`Problem` located at the key ``path``."""
        file, line = self.locate(path)
        return Problem(file, line, _dotted(path), message)


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> LoadedConfig:
    """Read, override and validate a YAML config; raise :class:`ConfigError` listing every
    problem with its file, line and key."""
    file = Path(path).expanduser()
    try:
        with file.open("rb") as stream:
            raw = stream.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            msg = (
                f"larger than {MAX_CONFIG_BYTES >> 20} MiB, which no config is: it names inputs, "
                "steps and an output; check that this is the config file"
            )
            raise ConfigError([Problem(str(file), None, "", msg)])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        msg = "no such config file; check the path"
        raise ConfigError([Problem(str(file), None, "", msg)]) from None
    except IsADirectoryError:
        msg = "is a directory; give the YAML config file"
        raise ConfigError([Problem(str(file), None, "", msg)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(str(file), None, "", f"cannot read it: {exc}")]) from None
    data, lines = _parse(text, str(file))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        msg = f"a config is a mapping of keys (input, steps, output), not a {type(data).__name__}"
        raise ConfigError([Problem(str(file), 1, "", msg)])
    keys = apply_overrides(data, list(overrides))
    loaded = LoadedConfig(
        config=RunConfig.model_construct(),
        path=file,
        data=data,
        lines=lines,
        overridden=keys,
    )
    try:
        loaded.config = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(loaded, exc.errors())) from None
    return loaded


EXPECTED = {
    "depth": "a halo width: an integer, or [rows, cols]",
    "chunks": "a block size: an integer, or [rows, cols]",
    "shape": "[rows, cols]",
    "tile": "[rows, cols]",
    "boundary": "a boundary mode name or a number",
    "channels": "input, none, or a channel count",
    "input": "a path, or a mapping with a path key",
}
"""What a key of a union type takes, said once instead of once per member of the union."""


def _problems(loaded: LoadedConfig, errors: list[Any]) -> list[Problem]:
    """One problem per key: the errors pydantic reports for each member of a union merge."""
    by_loc: dict[Key, list[Any]] = {}
    for error in errors:
        loc = tuple(p for p in error["loc"] if not _is_union_tag(p))
        by_loc.setdefault(loc, []).append(error)
    problems = []
    for loc, group in by_loc.items():
        name = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
        if len(group) > 1 and not any(e["type"] == "extra_forbidden" for e in group):
            expected = EXPECTED.get(name, " or ".join(e["msg"] for e in group))
            message = f"expected {expected} (got {group[0].get('input')!r})"
            problems.append(loaded.problem(loc, message))
        else:
            problems.extend(_problem(loaded, loc, e) for e in group)
    return problems


def _problem(loaded: LoadedConfig, loc: Key, error: Any) -> Problem:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _fields_at(loc[:-1])
        hint = did_you_mean(str(loc[-1]), allowed)
        message = f"unknown key {loc[-1]!r}: {hint}allowed here: {', '.join(allowed)}"
    elif kind == "missing":
        message = f"required key {loc[-1]!r} is missing"
    elif kind == "string_pattern_mismatch":  # the only patterned key is a size of memory
        message = f"{error['input']!r} is not a size of memory: give one such as 4GB or 512MiB"
    else:
        message = error["msg"].removeprefix("Value error, ")
        if "input" in error and kind not in ("value_error", "assertion_error"):
            message += f" (got {error['input']!r})"
    return loaded.problem(loc, message)


def _is_union_tag(part: Any) -> bool:
    """pydantic names the union member it tried (``tuple[...]``, ``constrained-int``,
    ``InputSpec``) in ``loc``; config keys never contain brackets or hyphens."""
    return isinstance(part, str) and (
        "[" in part or "-" in part or part[:1].isupper() or part in ("str", "int", "float")
    )


def _fields_at(loc: Key) -> list[str]:
    """Keys allowed in the mapping at ``loc`` of a config."""
    model: type[BaseModel] | None = RunConfig
    from pipeline.config import schema

    by_key: dict[str, type[BaseModel]] = {
        "input": schema.InputSpec,
        "generate": schema.GenerateSpec,
        "steps": schema.StepSpec,
        "output": schema.OutputSpec,
        "compute": schema.ComputeSpec,
    }
    for i, part in enumerate(loc):
        if isinstance(part, int):
            continue
        if part == "inputs":
            model = schema.InputSpec if len(loc) > i + 1 else model
            continue
        model = by_key.get(part, model)
    return sorted(model.model_fields) if model is not None else []
