# ruff: noqa: F821 - a notebook cell
# Lab 7, a deliberately wrong answer to question 1: GPipe's order instead of 1F1B's.
#
# Every stage runs all its forwards, then all its backwards. It is a valid schedule: every op
# runs once, each backward after its forward, and the real run goes through with the same
# gradients (the public checks pass, but the last stage's order). What it is not is 1F1B:
# each stage holds the activations of all m micro-batches at once instead of at most p - s.
# CI grades the solution notebook with this cell in place of question 1's answer and checks
# that the hidden test below fails.
#
# replaces: def one_f_one_b_schedule
# caught by: real stage workers ran it


def one_f_one_b_schedule(p, m):
    """All forwards, then all backwards, on every stage (GPipe)."""
    ops = [("F", i) for i in range(m)] + [("B", i) for i in range(m)]
    return [list(ops) for _ in range(p)]
