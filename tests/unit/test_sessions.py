"""The session limit a connection learns from the server's refusals (supakong.sessions): what a
refusal teaches, how a session waits for a free one (asking idle ones to close), and the
messages that name the sshd setting."""

from __future__ import annotations

import threading
import time

import pytest

from supakong.sessions import SessionBudget, learned_capacity, max_sessions_message, sessions_refused_message


def free_slot(budget: SessionBudget, deadline: float, **kwargs) -> bool:
    """wait_for_slot, and the slot given back at once (as an open that failed would)."""
    got = budget.wait_for_slot(deadline, **kwargs)
    if got:
        budget.give_back()
    return got


class FakeChannel:
    """What the budget reads of a paramiko channel."""

    closed = False


@pytest.mark.parametrize(
    ("known", "open_now", "learned"),
    [
        (None, 1, 1),  # MaxSessions 1: refused beside one
        (None, 2, 2),
        (2, 1, 1),  # a later refusal beside fewer: the lower limit holds
        (1, 3, 1),  # never raised by a refusal
        (None, 0, None),  # none open: a closing session may still count, nothing learned
        (2, 0, 2),
    ],
)
def test_a_refusal_teaches_at_most_as_many_as_were_open(known: int | None, open_now: int, learned: int | None) -> None:
    assert learned_capacity(known, open_now) == learned


def test_the_budget_counts_open_channels_and_pending_ones() -> None:
    budget = SessionBudget()
    first, second = budget.track(FakeChannel()), budget.track(FakeChannel())
    assert budget.in_use() == 2 and not budget.constrained
    second.closed = True
    budget.refused(pending=1)  # a session asked for ahead is open on the server too
    assert budget.capacity == 2 and budget.constrained
    assert first is not None


def test_without_a_known_limit_nothing_waits() -> None:
    budget = SessionBudget()
    for _ in range(20):
        budget.track(FakeChannel())
    assert free_slot(budget, time.monotonic())


def test_a_session_waits_for_one_to_close_and_gives_up_at_the_deadline() -> None:
    budget = SessionBudget()
    held = budget.track(FakeChannel())
    budget.refused()
    assert budget.capacity == 1
    started = time.monotonic()
    assert not free_slot(budget, started + 0.2)
    assert time.monotonic() - started >= 0.2
    threading.Timer(0.1, lambda: setattr(held, "closed", True)).start()
    assert free_slot(budget, time.monotonic() + 5)


def test_a_waiting_session_asks_idle_ones_to_close() -> None:
    budget = SessionBudget()
    idle = budget.track(FakeChannel())
    budget.refused()
    asked: list[int] = []

    def reclaim() -> None:
        asked.append(1)
        idle.closed = True

    budget.reclaimers.append(reclaim)
    assert free_slot(budget, time.monotonic() + 5)
    assert asked == [1]


def test_the_messages_name_the_host_and_the_sshd_setting() -> None:
    waited = max_sessions_message("edge-1", "10.0.0.5:22", 1, 10)
    assert waited.startswith("edge-1 (10.0.0.5:22): ") and "MaxSessions" in waited and "1 at a time" in waited
    assert "\n" not in waited
    assert "MaxSessions 1 or more" in sessions_refused_message("edge-1", "10.0.0.5:22")


def test_a_slot_freed_by_a_session_that_just_closed_costs_one_sync_then_none() -> None:
    """sshd collects a closed session only after handling what came with our CLOSE: a new
    session right behind it would be refused, so the budget asks one round trip first."""
    budget = SessionBudget()
    first = budget.track(FakeChannel())
    budget.refused()
    first.closed = True
    synced: list[int] = []
    assert free_slot(budget, time.monotonic() + 1, sync=lambda: synced.append(1))
    assert synced == [1]
    assert free_slot(budget, time.monotonic() + 1, sync=lambda: synced.append(1))
    assert synced == [1], "nothing closed since: no round trip"
    budget.track(FakeChannel()).closed = True
    budget.track(FakeChannel())
    budget.capacity = 3  # a slot is free without the closed one: no round trip either
    assert free_slot(budget, time.monotonic() + 1, sync=lambda: synced.append(1))
    assert synced == [1]


def test_two_opens_at_once_never_share_the_last_slot() -> None:
    budget = SessionBudget()
    budget.track(FakeChannel())
    budget.track(FakeChannel())
    budget.refused()
    assert budget.capacity == 2
    budget._channels[0].closed = True  # one slot free: the first waiter takes it
    assert budget.wait_for_slot(time.monotonic() + 1)
    assert not budget.wait_for_slot(time.monotonic() + 0.1), "the slot is taken until its open ends"
    budget.give_back()
    assert free_slot(budget, time.monotonic() + 1)
