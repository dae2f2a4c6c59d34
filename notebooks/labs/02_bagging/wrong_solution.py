# ruff: noqa: F821 - a notebook cell: np, Gradient and Combined come from the lab's first cells
# Lab 2, a deliberately wrong answer to question 3: a soft vote that averages the members'
# columns by position, without placing them under their classes.
#
# When every member saw every class it gives the right answer, so the public check passes.
# A member whose bootstrap sample missed a class (grade 9 has 5 wines) answers fewer
# columns, and the columns no longer line up. CI grades the solution notebook with this
# cell in place of question 3's answer and checks that the hidden test below fails.
#
# replaces: class SoftVote
# caught by: members that saw different classes, in any order


class SoftVote:
    """Bagging's vote for classification: the members' class probabilities, averaged."""

    def combine(self, predictions, classes):
        """predictions: worker name -> MemberPrediction(values, classes); classes: every
        class, in order. Returns Combined(predictions, probabilities)."""
        probabilities = np.mean([member.values for member in predictions.values()], axis=0)
        return Combined(np.asarray(classes)[probabilities.argmax(axis=1)], probabilities)
