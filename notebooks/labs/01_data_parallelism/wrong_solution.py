# ruff: noqa: F821 - a notebook cell: np, Gradient and Combined come from the lab's first cells
# Lab 1, a deliberately wrong answer to question 3: the original Chimera's unweighted mean.
#
# Every worker's gradient counts the same, whatever the size of its shard. With equal shards
# that is right, so the public check passes; with shards of 60, 30 and 10 rows the step is
# not full-batch gradient descent any more. CI grades the solution notebook with this cell in
# place of question 3's answer and checks that the hidden test below fails.
#
# replaces: class ShardSizeWeightedMean
# caught by: weights each worker by its shard size


class ShardSizeWeightedMean:
    """The parameter server's rule: the workers' gradients averaged with weights n_k / n."""

    def aggregate(self, gradients):
        """gradients: worker name -> ShardGradient(weights, bias, n_samples, loss).
        Returns Gradient(weights, bias)."""
        answers = list(gradients.values())
        weights = np.mean([answer.weights for answer in answers], axis=0)
        bias = np.mean([answer.bias for answer in answers], axis=0)
        return Gradient(weights, bias)
