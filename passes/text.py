"""Pipeline text: `name{key=value,...}` items separated by commas, parsed back into passes."""

from __future__ import annotations

import re
from collections.abc import Mapping

from xaigraph.errors import BadInputError
from xaigraph.pipeline import Pass, PassManager

__all__ = ["parse_pipeline"]

_ITEM = re.compile(r"([a-z][a-z0-9-]*)(?:\{(.*)\})?", re.DOTALL)


def _split_items(text: str) -> list[str]:
    """The comma-separated items of `text`, commas inside braces kept."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
            if depth > 1:
                raise BadInputError("nested '{'")
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise BadInputError("'}' without '{'")
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    if depth:
        raise BadInputError("'{' without '}'")
    items.append(text[start:].strip())
    return items


def _options(cls: type[Pass], body: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in body.split(","):
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq or not key or not value:
            raise BadInputError(f"option '{part.strip()}' is not key=value")
        if key not in cls.option_names:
            have = ", ".join(cls.option_names) or "none"
            raise BadInputError(f"{cls.name} has no option '{key}' (its options: {have})")
        if key in options:
            raise BadInputError(f"option '{key}' given twice")
        options[key] = value
    return options


def _parse_item(item: str, passes: Mapping[str, type[Pass]]) -> Pass:
    if not item:
        raise BadInputError("an empty item (two commas in a row, or one at an end)")
    match = _ITEM.fullmatch(item)
    if match is None:
        raise BadInputError(f"'{item}' is not a pass: write name or name{{key=value,...}}")
    name, body = match.group(1), match.group(2)
    cls = passes.get(name)
    if cls is None:
        raise BadInputError(f"unknown pass '{name}' (passes: {', '.join(passes)})")
    return cls.from_options(_options(cls, body) if body is not None else {})


def parse_pipeline(text: str, passes: Mapping[str, type[Pass]]) -> PassManager:
    """The pipeline `text` describes, its passes looked up by name in `passes`. Raises
    `BadInputError` saying what is wrong, with the text."""
    try:
        if not text.strip():
            raise BadInputError("no passes")
        return PassManager([_parse_item(item, passes) for item in _split_items(text)])
    except BadInputError as exc:
        raise BadInputError(f"pipeline '{text}': {exc}") from None
