# ruff: noqa: F821 - a notebook cell: np, Gradient and Combined come from the lab's first cells
# Lab 3, a deliberately wrong answer to question 1: a policy that counts failures as answers.
#
# Without failures it behaves like the right policy, so the public check passes. With a dead
# worker, its instant "connection refused" counts toward k: the round closes before a slow
# but living worker answers, and its gradient is lost although it would have come in time.
# CI grades the solution notebook with this cell in place of question 1's answer and checks
# that the hidden test below fails.
#
# replaces: class BackupWorkers
# caught by: a dead worker is not an answer


class BackupWorkers:
    """Close a round after the first k replies, or at the deadline (seconds after the
    broadcast), or when nobody is left to wait for."""

    def __init__(self, k, deadline=None):
        self.k = k
        self.deadline = deadline

    def closes(self, answered, failed, n_workers, elapsed):
        """Whether the round may close now; True or False."""
        if len(answered) + len(failed) >= min(self.k, n_workers):
            return True
        if self.deadline is not None and elapsed >= self.deadline:
            return True
        return len(answered) + len(failed) >= n_workers

    def __repr__(self):
        return f"BackupWorkers(k={self.k}, deadline={self.deadline})"
