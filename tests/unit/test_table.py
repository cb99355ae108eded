"""The CLI's tables: plain and whole-line in a pipe, ruled and folded (never cut) on a terminal."""

from __future__ import annotations

import re

import pytest

from scimflow.ops.table import render

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LONG_ID = "0f8c6d3e-1b2a-4c5d-9e8f-7a6b5c4d3e2f-and-a-long-tail"


def test_a_piped_table_is_plain_lines_two_spaces_apart_with_numbers_right_aligned() -> None:
    text = render(("NAME", "COUNT", "RATE"), [("acme", 7, 0.5), ("globex-corp", 12, None)],
                  terminal=False)

    assert text.splitlines() == [
        "NAME         COUNT  RATE",
        "acme             7   0.5",
        "globex-corp     12     -",
    ]


def test_a_piped_table_has_no_colour_codes_and_never_wraps_a_long_row() -> None:
    text = render(("ID", "URL"), [(LONG_ID, "https://example.com/" + "x" * 300)],
                  terminal=False)

    assert "\x1b" not in text
    assert len(text.splitlines()) == 2
    assert text.splitlines()[1].split() == [LONG_ID, "https://example.com/" + "x" * 300]


def test_cell_text_is_printed_as_is_not_read_as_markup() -> None:
    text = render(("REASON",), [("[bold]bad[/bold] :smile: [1]",)], terminal=False)

    assert text.splitlines()[1] == "[bold]bad[/bold] :smile: [1]"


def test_a_table_without_rows_is_its_header() -> None:
    assert render(("ID", "COUNT"), [], terminal=False) == "ID  COUNT"


def test_on_a_terminal_the_header_is_bold_and_ruled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")

    lines = render(("NAME", "COUNT"), [("acme", 7)], terminal=True).splitlines()

    assert "\x1b[1m" in lines[0]
    assert ANSI.sub("", lines[0]).split() == ["NAME", "COUNT"]
    assert set(lines[1]) == {"─"}
    assert lines[2].split() == ["acme", "7"]


def test_on_a_narrow_terminal_a_long_id_folds_onto_more_lines_and_keeps_every_character(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "30")

    lines = render(("ID", "N"), [(LONG_ID, 3)], terminal=True).splitlines()[2:]

    assert len(lines) > 1
    assert all(len(line) <= 30 for line in lines)
    assert "".join(line[:-1].strip() if line.endswith("3") else line.strip()
                   for line in lines) == LONG_ID


def test_on_a_terminal_short_columns_stay_whole_while_a_long_one_wraps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "70")
    reason = "the member 0f8c6d3e-1b2a-4c5d-9e8f-7a6b5c4d3e2f was never created by the IdP"

    lines = [ANSI.sub("", line) for line in render(
        ("SEQ", "APPLIED", "STATE", "REASON"), [(42, "2026-03-01 09:30:05", "dead", reason)],
        terminal=True).splitlines()]

    assert all(len(line) <= 70 for line in lines)
    assert lines[2].split()[:4] == ["42", "2026-03-01", "09:30:05", "dead"]
    assert len(lines) > 3  # the reason wrapped, within the terminal


def test_a_table_wider_than_the_terminal_loses_no_character(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    headers = tuple(f"COLUMN {n}" for n in range(8))
    row = tuple(f"value-{n}-" + "x" * n for n in range(8))

    text = ANSI.sub("", render(headers, [row], terminal=True))

    assert all(len(line) <= 40 for line in text.splitlines())
    # Columns fold side by side, so count what every value holds: 2 hyphens, n x's.
    assert text.count("-") == 2 * len(row)
    assert text.count("x") == sum(range(8))
