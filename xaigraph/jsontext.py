"""JSON text as xaigraph writes it: strict JSON, whatever the values.

Python's `json` writes NaN and infinity as the bare tokens `NaN` and `Infinity`, which strict
readers (jq, `JSON.parse`, `json.loads(..., parse_constant=...)` that refuses them) reject,
and fails with `UnicodeEncodeError` when a string holds a lone surrogate (a file name that
is not valid UTF-8, as Python decodes it: `b'\\xff'` -> `'\\udcff'`) and the text is written
as UTF-8. `dumps` writes every file xaigraph writes as JSON (results.jsonl, run.json,
metrics.json, the report's data, `--json` objects):

- a float that is not finite (NaN, infinity; numpy's too) is `null`: the value is undefined;
- numpy scalars are plain numbers, tuples lists;
- with `ensure_ascii=False`, a lone surrogate is written as its `\\uXXXX` escape (what
  `ensure_ascii=True` writes for it), so the text encodes as UTF-8 and `json.loads` gives the
  same string back (and `os.fsencode` of it the original bytes).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["dumps", "plain"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def plain(value: Any) -> Any:
    """`value` with every non-finite float as None, numpy scalars as Python numbers and
    tuples as lists (dict keys are kept as they are)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        value = value.item()  # a numpy scalar (numpy is not imported for this)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """`json.dumps(plain(value), allow_nan=False, **kwargs)`, lone surrogates escaped (see
    the module's docstring)."""
    text = json.dumps(plain(value), allow_nan=False, **kwargs)
    if not kwargs.get("ensure_ascii", True):
        text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text
