"""Text rules shared by acceptance, the store and the filters: which strings can be stored at all
(no lone surrogate, no NUL), and `fold_key`, the one rule deciding when two spellings are the same
unique key.
See docs/ARCHITECTURE.md ("Unique keys"; "Strings must be storable" in "Decisions worth knowing").
"""

from __future__ import annotations

import unicodedata

NUL = "\x00"


def is_utf8_encodable(text: str) -> bool:
    """Whether `text` is a sequence of Unicode scalar values (no lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_storable_text(text: str) -> bool:
    """Whether every database and the journal can store `text` as it is."""
    return NUL not in text and is_utf8_encodable(text)


def fold_key(text: str) -> str:
    """The case-insensitive form of a unique key: Unicode canonical caseless matching.

    Full case folding (`ΟΔΟΣ`, `οδος` and `οδοσ` are one key; `Straße` and `STRASSE` too) of
    the canonically decomposed text, recomposed, so precomposed and combining spellings of
    one letter are one key. Language-specific mappings are not applied: `İvan` (capital I
    with dot) and `ivan` are different keys, as are dotless i (U+0131) and `i`.
    """
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())
