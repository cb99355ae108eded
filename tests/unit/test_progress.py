"""Progress bars: drawn on a terminal, silent anywhere else, and never in the way of the items."""

from __future__ import annotations

import io

from rich.console import Console

from scimflow.ops.progress import Countdown, PhaseBars, tracked


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=80), out


def _pipe() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=80), out


def test_off_a_terminal_tracked_yields_every_item_and_writes_nothing() -> None:
    console, out = _pipe()

    assert list(tracked([1, 2, 3], description="replaying", console=console)) == [1, 2, 3]
    assert out.getvalue() == ""


def test_on_a_terminal_the_bar_counts_the_items_taken() -> None:
    console, out = _terminal()

    with tracked(iter(["a", "b"]), 2, "replaying", console=console) as items:
        taken = list(items)

    assert taken == ["a", "b"]
    assert "replaying" in out.getvalue()
    assert "2/2" in out.getvalue()


def test_the_total_defaults_to_the_length_of_a_sized_iterable() -> None:
    console, out = _terminal()

    for _ in tracked(["x"] * 5, description="importing", console=console):
        pass

    assert "5/5" in out.getvalue()


def test_a_loop_left_early_still_stops_the_bar() -> None:
    console, out = _terminal()
    items = tracked(range(10), description="pruning", console=console)

    for item in items:
        if item == 3:
            break
    del items

    # A stopped bar has drawn its last frame and shows the cursor again.
    assert "\x1b[?25h" in out.getvalue()


def test_phase_bars_follow_each_phase_and_are_silent_off_a_terminal() -> None:
    console, out = _terminal()
    bars = PhaseBars(console, suffix=" acknowledged")
    bars.show("users", 4, 10)
    bars.show("users", 10, 10)
    bars.show("groups", 1, 2)
    bars.close()

    assert "users acknowledged" in out.getvalue() and "10/10" in out.getvalue()
    assert "groups acknowledged" in out.getvalue()
    silent, piped = _pipe()
    quiet = PhaseBars(silent)
    quiet.show("users", 1, 2)
    quiet.close()
    assert not quiet.drawing and piped.getvalue() == ""


def test_a_countdown_measures_against_the_largest_backlog_seen() -> None:
    console, out = _terminal()
    countdown = Countdown("applying", console)
    for pending in (40, 50, 20, 0):
        countdown.remaining(pending)
    countdown.close()

    assert "50/50" in out.getvalue()
