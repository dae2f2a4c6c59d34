# ruff: noqa: F821 - a notebook cell
# Lab 6, a deliberately wrong answer to question 1: FedAvg with the plain mean.
#
# It averages the sampled clients' updates without weights, as if every client had trained on
# the same number of rows. With equal n_k (the public check) it answers right, and a real run
# goes through and learns something. But a client with 13 rows then moves the global model as
# much as one with 260, so a round is no longer the n_k-weighted mean of the updates, and
# with one full-batch local step it is no longer the parameter server's gradient descent.
# CI grades the solution notebook with this cell in place of question 1's answer and checks
# that the hidden test below fails.
#
# replaces: class ClientWeightedMean
# caught by: weights each client by its n_k


class ClientWeightedMean:
    """FedAvg's rule: the sampled clients' updates, averaged (every client counts once)."""

    def aggregate(self, updates):
        answers = list(updates.values())
        weights = sum(answer.weights for answer in answers) / len(answers)
        bias = sum(answer.bias for answer in answers) / len(answers)
        return Gradient(weights, bias)
