"""When an agent broadcasts its capabilities: every period, at once on a change of what it
offers, and early, but at most twice a period, when only its connections or its log's length
changed (a flapping link cannot flood the mesh)."""

from __future__ import annotations

from bzzz.mesh.node import broadcast_due


def test_a_change_of_what_the_agent_offers_goes_out_at_once() -> None:
    assert broadcast_due(changed=True, volatile_changed=False, since_last_s=0.01, interval_s=10)


def test_nothing_changed_means_one_broadcast_a_period() -> None:
    assert not broadcast_due(changed=False, volatile_changed=False, since_last_s=9.9, interval_s=10)
    assert broadcast_due(changed=False, volatile_changed=False, since_last_s=10, interval_s=10)


def test_a_flapping_connection_set_is_sent_at_most_twice_a_period() -> None:
    assert not broadcast_due(changed=False, volatile_changed=True, since_last_s=4.9, interval_s=10)
    assert broadcast_due(changed=False, volatile_changed=True, since_last_s=5, interval_s=10)
    # A link flapping every 10 ms for a minute: the broadcasts it causes, at the loop's pace.
    sent, last, now = 0, 0.0, 0.0
    while now < 60:
        now += 0.01
        if broadcast_due(changed=False, volatile_changed=True, since_last_s=now - last, interval_s=10):
            sent, last = sent + 1, now
    assert 10 <= sent <= 12  # twice a period (give or take the last), not 6,000
