"""Loading policy.yaml: YAML nodes → ``${VAR}`` interpolation → the pydantic Policy.

The first step of every command (``karchive policy validate``, ``plan``, ``apply``, ``run``). The
YAML is composed into nodes rather than loaded straight into Python values, so every value keeps
its line: interpolation happens on the nodes, and a pydantic error location such as
``('rules', 2, 'match', 'unplayed_for')`` is mapped back to the line it came from. Every problem
becomes one :class:`PolicyError` whose text is a single line —
``policy.yaml:14: rules[2].match.unplayed_for: '3yr' is not a duration; use ...`` — naming the
file, the line, the field, the problem and the fix. Secret values are never echoed.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from policies.schema import Policy
from policies.strict import LocatedValueError

Path_ = tuple[str | int, ...]

# Fields whose values must never appear in an error, whatever went wrong with them.
_SECRET_RE = re.compile(r"secret|password|passwd|token|credential", re.IGNORECASE)
_VAR_RE = re.compile(r"\$\$|\$\{([^}]*)\}")
_VAR_NAME_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)


class PolicyError(Exception):
    """An invalid policy. ``str()`` is one line: ``file:line: field: problem; fix``."""

    def __init__(self, source: str, line: int | None, field: str, problem: str) -> None:
        self.source = source
        self.line = line
        self.field = field
        self.problem = problem
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class _Spot:
    """Lines (1-based) of one value and of the key that names it."""

    value_line: int
    key_line: int


def load_policy(path: str | Path, environ: Mapping[str, str] | None = None) -> Policy:
    """Read and validate a policy file; relative paths in it are relative to its folder."""
    path = Path(path)
    return parse_policy(_read(path), str(path), base_dir=path.parent, environ=environ)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), None, "", f"cannot read the policy ({exc.strerror}); "
                          "check the path given with -f") from None
    except UnicodeDecodeError:
        raise PolicyError(str(path), None, "", "the policy is not UTF-8 text; save it as "
                          "UTF-8") from None


def check_policy(path: str | Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """Validate a policy's structure and values WITHOUT needing its environment: the names of
    the ``${VAR}`` it uses that are unset (a note for the caller); PolicyError for any other
    problem. A field whose value comes from an unset variable is not judged."""
    path = Path(path)
    missing: dict[Path_, list[str]] = {}
    env = os.environ if environ is None else environ
    _guarded(_read(path), str(path), path.parent, env, missing)
    return sorted({name for names in missing.values() for name in names})


def parse_policy(
    text: str,
    source_name: str,
    base_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Policy:
    """Validate policy text; ``source_name`` is how errors name the file."""
    policy = _guarded(text, source_name, base_dir, os.environ if environ is None else environ,
                      None)
    assert policy is not None  # None only when unset variables are collected (check_policy)
    return policy


def _guarded(text: str, source_name: str, base_dir: str | Path | None,
             env: Mapping[str, str], missing: dict[Path_, list[str]] | None) -> Policy | None:
    """:func:`_parse`, every failure of the YAML reader or of depth made one PolicyError. With
    ``missing``, unset variables are collected there (by field) instead of refused, and None is
    returned when the only problems left are in those fields."""
    try:
        return _parse(text, source_name, base_dir, env, missing)
    except RecursionError:
        raise PolicyError(source_name, None, "", "the policy is nested too deeply; a policy "
                          "needs a few levels of sections, not hundreds") from None
    except yaml.reader.ReaderError as exc:
        where = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1])
        raise PolicyError(source_name, where, "", f"character U+{code:04X} is not allowed in "
                          "YAML; remove it (control characters are refused)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "malformed YAML"
        raise PolicyError(source_name, line, "", f"YAML syntax error: {problem}; check the "
                          "indentation and quoting on this line or the one above") from None
    except yaml.YAMLError:
        raise PolicyError(source_name, None, "", "the policy is not readable YAML; check it "
                          "with a YAML linter") from None


# The YAML 1.1 core tags a policy value may carry (implicitly); any other tag is refused.
_PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in
                        ("str", "int", "float", "bool", "null", "map", "seq", "merge"))


def _parse(text: str, source_name: str, base_dir: str | Path | None,
           env: Mapping[str, str], missing: dict[Path_, list[str]] | None) -> Policy | None:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        raise PolicyError(source_name, 1, "", "the policy is empty; start from the example "
                          "policy.yaml of the project")
    if not isinstance(root, yaml.MappingNode):
        raise PolicyError(source_name, root.start_mark.line + 1, "", "the policy must be a "
                          "mapping of sections (version, kaltura, storage, rules, ...)")
    builder = _Builder(source_name, env, missing)
    data = builder.build(root, ())
    context = {"base_dir": Path(base_dir) if base_dir is not None else Path(".")}
    try:
        return Policy.model_validate(data, context=context)
    except ValidationError as exc:
        skip = set(missing or ())
        errors = [e for e in exc.errors()
                  if not _under(_clean_location(e["loc"], data, e["type"] == "missing"), skip)]
        if not errors:
            return None
        raise _translate(errors[0], data, builder.spots, source_name) from None


def _under(path: Path_, prefixes: set[Path_]) -> bool:
    return any(path[:len(p)] == p for p in prefixes)


class _Builder:
    """Turns YAML nodes into plain values, interpolating and remembering where each came from."""

    def __init__(self, source: str, environ: Mapping[str, str],
                 missing: dict[Path_, list[str]] | None = None) -> None:
        self.source = source
        self.environ = environ
        self.missing = missing
        self.spots: dict[Path_, _Spot] = {}
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path_, key_line: int | None = None) -> Any:
        line = node.start_mark.line + 1
        self.spots[path] = _Spot(line, key_line if key_line is not None else line)
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
            raise PolicyError(self.source, line, _dotted(path), f"YAML tag {node.tag!r} is not "
                              "allowed; write a plain section or list")
        if isinstance(node, yaml.MappingNode):
            self._check_keys(node, path)
            # Honour "<<: *defaults" merge keys: merged pairs come first, explicit keys override.
            self._constructor.flatten_mapping(node)
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                # The key's text, not its YAML 1.1 reading: "no:" stays "no", never False.
                key = key_node.value
                result[key] = self.build(value_node, (*path, key), key_node.start_mark.line + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        if node.tag not in _PLAIN_TAGS:
            raise PolicyError(self.source, line, _dotted(path), f"YAML tag {node.tag!r} is not "
                              "allowed (dates, binary and objects are not policy values); "
                              "quote the value")
        if node.tag == "tag:yaml.org,2002:str" or (node.style is None and "${" in node.value):
            interpolated = self._interpolate(node.value, path, line)
            if interpolated != node.value:
                # A substituted value stays text ("0123" must not become 83 or 123); pydantic
                # converts it where the field wants a number or a boolean.
                return interpolated
        return self._constructor.construct_object(node, deep=True)

    def _check_keys(self, node: yaml.MappingNode, path: Path_) -> None:
        seen: set[str] = set()
        for key_node, _ in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise PolicyError(self.source, line, _dotted(path),
                                  "a key must be a plain word; write 'name: value'")
            # PyYAML keeps the last of two equal keys; a policy with both is a mistake.
            if key_node.value in seen and key_node.value != "<<":
                raise PolicyError(self.source, line, _dotted((*path, key_node.value)),
                                  "this key appears twice in the same section; keep one")
            seen.add(key_node.value)

    def _interpolate(self, text: str, path: Path_, line: int) -> str:
        if "$" not in text:
            return text

        def substitute(found: re.Match[str]) -> str:
            if found.group(0) == "$$":
                return "$"  # "$${X}" writes a literal "${X}"
            spec = _VAR_NAME_RE.match(found.group(1))
            if spec is None:
                raise PolicyError(self.source, line, _dotted(path),
                                  f"'${{{found.group(1)}}}' is not a variable reference; write "
                                  "${NAME} or ${NAME:-default}")
            name, default = spec.groups()
            value = self.environ.get(name)
            if value is None or (value == "" and default is not None):
                if default is None and self.missing is not None:
                    self.missing.setdefault(path, []).append(name)
                    return found.group(0)  # left as written; this field is not judged
                if default is None:
                    raise PolicyError(self.source, line, _dotted(path),
                                      f"environment variable {name} is not set; export it or "
                                      f"write ${{{name}:-default}}")
                return default
            return value

        return _VAR_RE.sub(substitute, text)


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _clean_location(loc: tuple[Any, ...], data: Any, missing: bool) -> Path_:
    """Drop pydantic's union and validator markers, keeping the steps that exist in the data
    (and, for a missing key, the key itself)."""
    path: list[str | int] = []
    current = data
    for index, step in enumerate(loc):
        in_dict = isinstance(current, dict) and isinstance(step, str) and step in current
        in_list = isinstance(current, list) and isinstance(step, int) and 0 <= step < len(current)
        if in_dict or in_list:
            current = current[step]
            path.append(step)
        elif missing and index == len(loc) - 1 and isinstance(current, dict):
            path.append(step)
    return tuple(path)


def _line_of(path: Path_, spots: dict[Path_, _Spot], use_key: bool) -> int | None:
    for length in range(len(path), -1, -1):
        spot = spots.get(path[:length])
        if spot is not None:
            return spot.key_line if (use_key and length == len(path)) else spot.value_line
    return None


def _translate(error: Any, data: Any, spots: dict[Path_, _Spot], source: str) -> PolicyError:  # noqa: C901 — one branch per pydantic error kind: the table of policy messages
    kind = error["type"]
    ctx = error.get("ctx") or {}
    cause = ctx.get("error")
    path = _clean_location(error["loc"], data, missing=kind == "missing")
    if isinstance(cause, LocatedValueError):
        path = (*path, *cause.path)
    secret = any(isinstance(p, str) and _SECRET_RE.search(p) for p in path)
    shown = "the value" if secret else repr(error.get("input"))
    last = path[-1] if path else ""
    if kind == "missing":
        parent = _dotted(path[:-1]) or "the top level"
        problem = f"is required; add '{last}:' to {parent}"
    elif kind == "extra_forbidden":
        problem = _unknown_key(str(last), path[:-1])
    elif kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected) or [expected]
        near = difflib.get_close_matches(str(error.get("input")), choices, n=1)
        hint = f"did you mean '{near[0]}'?" if near else f"use one of: {', '.join(choices)}"
        problem = f"{shown} is not allowed; {hint}"
    elif kind == "value_error" and cause is not None:
        problem = str(cause)
    elif len(error["loc"]) > len(path) and error["loc"][-1] in ("int", "str"):
        # A member of an "id or name" union: neither reading worked.
        problem = f"{shown} is neither a number nor text; write an id or a name"
    elif kind in ("int_parsing", "int_type", "int_from_float"):
        problem = f"{shown} is not a whole number; write digits, e.g. 42"
    elif kind in ("float_parsing", "float_type"):
        problem = f"{shown} is not a number; write e.g. 0.25"
    elif kind in ("bool_parsing", "bool_type"):
        problem = f"{shown} is not true or false; write true or false"
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        problem = "must be a section of 'key: value' lines; indent its keys under it"
    elif kind in ("list_type", "tuple_type", "set_type", "frozen_set_type"):
        problem = "must be a list; write [a, b] or one '- item' line each"
    elif kind == "string_type":
        problem = "must be text; quote the value"
    elif kind == "string_too_short":
        problem = "must not be empty; give a value"
    else:
        problem = str(error["msg"]).replace("Input should be", "must be")
        problem = re.sub(r"^Value error, ", "", problem)
        problem = f"{problem}; fix the value"
    if kind == "missing":
        line = _line_of(path[:-1], spots, use_key=True)  # the section that lacks the key
    else:
        line = _line_of(path, spots, use_key=kind == "extra_forbidden")
    return PolicyError(source, line, _dotted(path), problem)


def _unknown_key(key: str, parent: Path_) -> str:
    allowed = sorted(_model_at(parent).model_fields)
    near = difflib.get_close_matches(key, allowed, n=1)
    if near:
        return f"unknown key '{key}'; did you mean '{near[0]}'?"
    return f"unknown key '{key}'; allowed keys: {', '.join(allowed)}"


def _model_at(path: Path_) -> type[BaseModel]:
    """The model that validates the mapping at ``path`` (for naming its allowed keys)."""
    model: type[BaseModel] = Policy
    for step in path:
        if isinstance(step, int):
            continue
        field = model.model_fields.get(step)
        found = _model_in(field.annotation) if field is not None else None
        if found is None:
            break
        model = found
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
