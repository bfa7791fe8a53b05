"""Names made safe for files: what output file names keep of an input's name or a class name.

`file_safe(name)` keeps Unicode letters and digits (after NFC normalisation, so that `ñ`
typed as `n` and a combining tilde is one letter), `-`, `_` and `.`, and replaces every other
character by `_`: spaces, the characters some file systems refuse (`<>:"/\\|?*`), control
characters, and the halves of a name that is not valid UTF-8 (which Python holds as lone
surrogates). `猫` stays `猫`, `foto ñ` becomes `foto_ñ`, `tiger cat` `tiger_cat`.
"""

from __future__ import annotations

import unicodedata

__all__ = ["file_safe"]

_KEPT = frozenset("-_.")


def file_safe(name: str, *, keep: str = "") -> str:
    """`name` with only letters, digits, `-`, `_`, `.` and the characters of `keep` left
    (the others `_`), NFC-normalised; `_` for an empty result."""
    kept = _KEPT | frozenset(keep)
    text = unicodedata.normalize("NFC", name)
    return "".join(c if c.isalnum() or c in kept else "_" for c in text) or "_"
