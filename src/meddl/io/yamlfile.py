"""Reading YAML files (experiment files, a bundle's ``config.yaml``) with errors that name the file, line and
column. Only plain YAML is read (``yaml.safe_load``): a tag that would build a Python object is refused, never
run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from meddl.errors import MedDLError

__all__ = ["parse_yaml", "read_yaml", "yaml_problem"]


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line saying where and what is wrong in a YAML text."""
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = str(getattr(exc, "problem", None) or exc).strip().splitlines()[0]
    found = re.search(r"tag '([^']+)'", problem)
    if isinstance(exc, yaml.constructor.ConstructorError) and found:
        tag = found.group(1).replace("tag:yaml.org,2002:", "!!")
        problem = f"the tag {tag!r} is not allowed: MedDL reads plain YAML and never builds objects from a file"
    return f"not valid YAML{where}: {problem}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the last silently: a
    second ``train:`` section would replace the first without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} in one section (first given on line {seen[key] + 1}); keep one of them",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> Any:
    """Plain YAML (no tags that build objects), each key once per mapping."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no object tags


def read_yaml(path: str | Path, what: str = "YAML file") -> Any:
    """The parsed content of a UTF-8 YAML file.

    Raises:
        MedDLError: the file is missing, a folder, not UTF-8 text, or not valid (plain) YAML; the message names
            the file and, where it can, the line.
    """
    path = Path(path)
    if not path.exists():
        raise MedDLError(f"{what} not found: {path}")
    if path.is_dir():
        raise MedDLError(f"{path}: is a folder; expected the {what}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MedDLError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MedDLError(
            f"{path}: not UTF-8 text (byte {data[exc.start : exc.start + 1]!r} on line {line}); save the {what} "
            "as UTF-8"
        ) from None
    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        raise MedDLError(f"{path}: {yaml_problem(exc)}") from None
