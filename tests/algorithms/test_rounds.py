"""The rules that decide when a synchronous round may close."""

from __future__ import annotations

import pytest

from chimera_nb.algorithms import FirstK, WaitForAll


def test_bsp_waits_until_every_worker_answered_or_failed():
    # Prepare
    rule = WaitForAll()

    # Execute
    early = rule.closes(["w1", "w2"], {}, n_workers=3, elapsed=50.0)
    complete = rule.closes(["w1", "w2"], {"w3": "refused"}, n_workers=3, elapsed=0.1)

    # Assert
    assert (early, complete) == (False, True)
    assert rule.deadline is None


@pytest.mark.parametrize(
    ("answered", "failed", "elapsed", "closes"),
    [
        (["w1", "w2"], {}, 0.05, False),  # waiting for a third reply
        (["w1", "w2", "w4"], {}, 0.05, True),  # the first three: w3 is a backup
        (["w1"], {}, 0.5, True),  # the deadline passed
        (["w1", "w2"], {"w3": "refused", "w4": "timeout"}, 0.05, True),  # nobody left
    ],
)
def test_first_k_closes_after_k_replies_or_the_deadline(answered, failed, elapsed, closes):
    # Prepare
    rule = FirstK(3, deadline=0.2)

    # Execute / Assert
    assert rule.closes(answered, failed, n_workers=4, elapsed=elapsed) is closes


def test_first_k_says_what_it_is_and_refuses_nonsense():
    # Execute / Assert
    assert repr(FirstK(3, deadline=0.2)) == "FirstK(3, deadline=0.2)"
    with pytest.raises(ValueError, match="at least 1"):
        FirstK(0)
