"""YAML experiment files and `--set` overrides into typed `ConfigModel`s, with errors that point.

Every failure (bad YAML, unknown key at any depth, wrong type, missing field, bad override) is
one `ConfigError` line naming where the offending value came from: the file and the line of its
key, or the `--set` argument that supplied it, then the dotted key path:

    config error: experiments/stage1.yaml:12: train.aepo.entropy_hgh is not a field (did you mean entropy_high?)
    config error: --set train.lr=abc: train.lr: Input should be a valid number, ... (got 'abc')

Line numbers come from the YAML node tree, recorded before construction; overrides are applied
to the parsed data, and an error whose key path an override touched is blamed on the override.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from qwenlong.core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

Key = tuple[str, ...]
"""A dotted key path as segments; list items appear as their index in decimal."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-6` and `1.5e3` as floats: YAML 1.1 insists on a dot and a
    signed exponent and would hand back strings, which a `float | str` field would keep."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


def load_config(path: str | Path, model: type[M], overrides: Sequence[str] = ()) -> M:
    """Read a YAML file, apply `a.b.c=value` overrides in order, and validate it into `model`.

    An empty file gives the model's defaults. Override values are parsed as YAML, so `x=3`,
    `x=true`, `x=[1,2]`, `x={a: 1}` and `x=null` are typed as written (and `x=` is null).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read ({err})") from None
    data, lines = _parse_yaml(text, str(path))
    return _validate(model, data, str(path), lines, overrides)


def load_config_dict(
    data: Mapping[str, Any], model: type[M], source: str, overrides: Sequence[str] = ()
) -> M:
    """Validate a config built in code; `source` names it in errors in place of a file."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: top level must be a mapping, got {_kind(data)}")
    return _validate(model, data, source, {}, overrides)


def config_to_yaml(config: BaseModel) -> str:
    """The fully resolved config (every default filled in) as YAML that `load_config` reads back
    to an equal model."""
    dumped = _yaml_ready(
        config.model_dump(mode="json", by_alias=True), config.model_dump(by_alias=True)
    )
    return yaml.safe_dump(dumped, sort_keys=False, allow_unicode=True, default_flow_style=False)


def write_resolved_config(config: BaseModel, path: str | Path) -> Path:
    """Write `config_to_yaml(config)` to `path` (parents created), with a header saying what it is."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Resolved {type(config).__name__}: every default filled in.\n"
    path.write_text(header + config_to_yaml(config), encoding="utf-8")
    return path


def _yaml_ready(js: Any, py: Any) -> Any:
    """The JSON-mode dump (tuples, paths, enums made plain), except non-finite floats, which
    JSON mode turns into null and YAML can hold as .inf/.nan, are taken from the Python dump."""
    if isinstance(py, float) and not math.isfinite(py):
        return py
    if isinstance(js, dict) and isinstance(py, dict):
        return {k: _yaml_ready(v, py.get(k)) for k, v in js.items()}
    if isinstance(js, list) and isinstance(py, list | tuple) and len(js) == len(py):
        return [_yaml_ready(j, p) for j, p in zip(js, py, strict=True)]
    return js


# ------------------------------------------------------------------------ YAML with line numbers


def _parse_yaml(text: str, source: str) -> tuple[dict[str, Any], dict[Key, int]]:
    """Parse one YAML document into data plus the 1-based line of every key and list item."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Key, int] = {}
        if node is not None:
            _record_lines(node, (), lines, source)
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: invalid YAML: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: invalid YAML: {' '.join(str(err).split())}") from None
    finally:
        loader.dispose()
    if data is None:  # a file holding only comments or `~`
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: top level must be a mapping of config keys, got {_kind(data)}"
        )
    return data, lines


def _record_lines(
    node: yaml.Node,
    key: Key,
    lines: dict[Key, int],
    source: str,
    above: frozenset[int] = frozenset(),
) -> None:
    """Walk the node tree; also refuses duplicate keys, which PyYAML would silently overwrite,
    and anchors that contain themselves (`a: &x [*x]`), which no config can mean."""
    if id(node) in above:
        raise ConfigError(f"{source}:{node.start_mark.line + 1}: {'.'.join(key)} contains itself")
    above = above | {id(node)}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` entries: their keys live (and are recorded) at the anchor
            child = (*key, str(key_node.value))
            line = key_node.start_mark.line + 1
            if child in lines:
                first = lines[child]
                raise ConfigError(
                    f"{source}:{line}: {'.'.join(child)} appears twice (first at line {first})"
                )
            lines[child] = line
            _record_lines(value_node, child, lines, source, above)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*key, str(i))] = item.start_mark.line + 1
            _record_lines(item, (*key, str(i)), lines, source, above)


def _kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(value), f"a {type(value).__name__}")


# ------------------------------------------------------------------------ overrides


def _unshared(value: Any) -> Any:
    """A copy in which no mapping or list is reachable twice. YAML aliases (`b: *a`) share one
    object, so without this `--set b.x=1` would change `a.x` too; it also keeps callers' dicts
    untouched."""
    if isinstance(value, Mapping):
        return {k: _unshared(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_unshared(v) for v in value]
    return value


def _apply_override(data: dict[str, Any], text: str) -> Key:
    """Set `a.b.c=value` in `data` in place, creating mappings on the way; returns the key."""
    name, sep, raw = text.partition("=")
    key = tuple(name.strip().split("."))
    if not sep or not all(key):
        raise ConfigError(f"--set {text}: expected KEY=VALUE with a dotted KEY, e.g. train.lr=1e-6")
    try:
        value = yaml.load(raw, Loader=_Loader)  # a SafeLoader: builds plain data only
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or " ".join(str(err).split())
        raise ConfigError(f"--set {text}: the value is not valid YAML ({problem})") from None
    node: Any = data
    for depth, part in enumerate(key[:-1]):
        here = ".".join(key[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(
                    f"--set {text}: {here} is not an index of a {len(node)}-item list"
                )
            index: Any = int(part)
        else:
            index = part
            if node.get(part) is None:
                node[part] = {}
        if not isinstance(node[index], dict | list):
            raise ConfigError(f"--set {text}: {here} is {_kind(node[index])}, not a mapping")
        node = node[index]
    last = key[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(f"--set {text}: {name} is not an index of a {len(node)}-item list")
        node[int(last)] = value
    else:
        node[last] = value
    return key


# ------------------------------------------------------------------------ validation


def _validate(
    model: type[M],
    data: Mapping[str, Any],
    source: str,
    lines: dict[Key, int],
    overrides: Sequence[str],
) -> M:
    data = _unshared(data)
    applied = [(_apply_override(data, text), text) for text in overrides]
    try:
        return model.model_validate(data)
    except ValidationError as err:
        errors = err.errors()
        first = errors[0]
        loc = tuple(str(part) for part in first["loc"])
        where = _origin(loc, source, lines, applied)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{where}: {_describe(model, first, loc)}{more}") from None


def _origin(loc: Key, source: str, lines: dict[Key, int], applied: list[tuple[Key, str]]) -> str:
    """Where the value at `loc` came from: the last override on that path, else the file line of
    the deepest key of `loc` present in the file (the parent section, for a missing field)."""
    for key, text in reversed(applied):
        if loc and (loc[: len(key)] == key or key[: len(loc)] == loc):
            return f"--set {text}"
    for depth in range(len(loc), 0, -1):
        if loc[:depth] in lines:
            return f"{source}:{lines[loc[:depth]]}"
    return source


def _describe(model: type[BaseModel], error: Mapping[str, Any], loc: Key) -> str:
    dotted = ".".join(loc)
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(loc[-1], _fields_at(model, loc[:-1]), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"{dotted} is not a field{hint}"
    if error["type"] == "missing":
        return f"{dotted} is required and missing"
    message = " ".join(str(error["msg"]).split())
    value = error.get("input")
    got = ""
    if isinstance(value, str | int | float | bool) or value is None:
        shown = repr(value)
        got = f" (got {shown if len(shown) <= 80 else shown[:77] + '...'})"
    return f"{dotted}: {message}{got}" if dotted else f"{message}{got}"


def _fields_at(model: type[BaseModel], loc: Key) -> list[str]:
    """Field names (and aliases) of the config model(s) that live at `loc` under `model`."""
    annotation: Any = model
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    names = set()
    for found in _models(annotation):
        for name, info in found.model_fields.items():
            names.update(n for n in (name, info.alias) if n)
    return sorted(names)


def _step(annotation: Any, part: str) -> Any:
    """The annotation one key below `annotation`: a model field, a list item or a dict value."""
    for found in _models(annotation):
        if part in found.model_fields:
            return found.model_fields[part].annotation
        if part == found.__name__:  # pydantic names the union member it tried
            return found
    for option in _options(annotation):
        args = typing.get_args(option)
        if typing.get_origin(option) in (list, tuple, set, frozenset, Sequence) and args:
            return args[0]
        if typing.get_origin(option) in (dict, Mapping) and len(args) == 2:
            return args[1]
    return None


def _options(annotation: Any) -> list[Any]:
    """The members of a Union/Optional (Annotated unwrapped), or the annotation itself."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _options(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [opt for arg in typing.get_args(annotation) for opt in _options(arg)]
    return [annotation]


def _models(annotation: Any) -> list[type[BaseModel]]:
    return [
        opt for opt in _options(annotation) if isinstance(opt, type) and issubclass(opt, BaseModel)
    ]
