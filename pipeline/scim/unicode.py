"""Strings JSON can carry but UTF-8 cannot (lone surrogates)."""

from __future__ import annotations


def is_utf8_encodable(text: str) -> bool:
    """Whether `text` is a sequence of Unicode scalar values (no lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
