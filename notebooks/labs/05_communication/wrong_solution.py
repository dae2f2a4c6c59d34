# ruff: noqa: F821 - a notebook cell
# Lab 5, a deliberately wrong answer to question 2: top-k that drops the residual.
#
# It picks the k largest coordinates of the new gradient alone and keeps what it did not send
# as the new residual, but never adds the old residual back: the memory is written and never
# read, so this is top-k without error feedback in disguise. With a residual of zeros (the
# first round, and the public check) it answers right. From the second round on, what it sent
# plus what it keeps is no longer the gradient plus the old residual, and a real fit stalls
# as top-k without memory does.
# CI grades the solution notebook with this cell in place of question 2's answer and checks
# that the hidden test below fails.
#
# replaces: def top_k_encode
# caught by: sent plus the new residual is exactly the gradient plus the old residual


def top_k_encode(gradient, residual, k):
    """The top-k of gradient + residual, and what is left of it: ((indices, values), new_residual)."""
    indices = np.argsort(-np.abs(gradient), kind="stable")[:k]
    values = gradient[indices]
    new_residual = gradient.copy()
    new_residual[indices] = 0.0
    return (indices, values), new_residual
