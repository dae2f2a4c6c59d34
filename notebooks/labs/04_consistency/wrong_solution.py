# ruff: noqa: F821 - a notebook cell
# Lab 4, a deliberately wrong answer to question 1: "strictly fewer than s clocks ahead".
#
# An off-by-one: a worker exactly s clocks ahead of the slowest waits, so StaleSynchronous(s)
# behaves as SSP(s - 1). Away from the boundary it answers right, so the public check passes,
# and a real SSP(3) run still stays within 3 clocks. At the boundary it is wrong, and with
# s = 0 it lets nobody start, not even the slowest worker (the lab run says so at once).
# CI grades the solution notebook with this cell in place of question 1's answer and checks
# that the hidden test below fails.
#
# replaces: class StaleSynchronous
# caught by: exactly s clocks ahead may start, one more may not


class StaleSynchronous:
    """SSP(s): a worker may start its next clock while it is at most s clocks ahead of the
    slowest worker."""

    def __init__(self, s):
        self.s = s

    def may_start(self, clock, slowest):
        """Whether a worker at `clock` may start its next step, the slowest being at `slowest`."""
        return clock - slowest < self.s

    def __repr__(self):
        return f"StaleSynchronous(s={self.s})"
