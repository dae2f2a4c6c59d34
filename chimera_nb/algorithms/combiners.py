"""Rules that turn the members' predictions into one: what a bagging master answers.

A combiner is an object with one method, ``combine(predictions, classes)``, that receives each
member's answer **by worker name** and returns a :class:`Combined` prediction. Like the
gradient rules, it never opens a connection: the master asks the members and hands their
answers over.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

import numpy as np

from .._types import ClassLabel, Matrix, Vector

__all__ = [
    "Combined",
    "MeanPrediction",
    "MemberPrediction",
    "PredictionCombiner",
    "SoftVote",
    "mean_prediction",
    "soft_vote",
    "union_of_classes",
]


class MemberPrediction(NamedTuple):
    """One member's answer: a value per row (regression), or a probability per row and class
    (classification, ``values`` of shape ``(n_samples, len(classes))``)."""

    values: np.ndarray
    classes: list[ClassLabel] | None = None


class Combined(NamedTuple):
    """The ensemble's answer: ``predictions`` (values or labels, shape ``(n_samples,)``) and,
    for classification, the class ``probabilities`` of shape ``(n_samples, n_classes)``."""

    predictions: np.ndarray
    probabilities: Matrix | None = None


class PredictionCombiner(Protocol):
    """How a bagging master turns its members' predictions into one."""

    def combine(
        self,
        predictions: Mapping[str, MemberPrediction],
        classes: Sequence[ClassLabel] | None = None,
    ) -> Combined:
        """``predictions``: worker name -> its member's answer; ``classes``: every class the
        members were trained on (None for regression)."""
        ...


def mean_prediction(predictions: Sequence[Vector]) -> Vector:
    """Bagging for regression: the arithmetic mean of the members' predictions."""
    return np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in predictions]), axis=0)


def union_of_classes(classes: Sequence[Sequence[ClassLabel]]) -> list[ClassLabel]:
    """The sorted union of several lists of class labels (numbers before strings)."""
    return sorted({label for member in classes for label in member}, key=_label_order)


def soft_vote(
    probabilities: Sequence[Matrix],
    classes: Sequence[Sequence[ClassLabel]],
    labels: Sequence[ClassLabel] | None = None,
) -> tuple[list[ClassLabel], Matrix]:
    """Bagging for classification: average the members' class probabilities.

    A member trained on a bootstrap sample may have seen only some classes, so each member's
    columns are first placed under the union of all classes (probability 0 for a class it
    never saw), or under ``labels`` if given (a superset of every member's classes).

    Returns
    -------
    classes : list
        ``labels``, else the sorted union of the members' classes.
    probabilities : ndarray of shape (n_samples, n_classes)
        The mean probability of each class; rows sum to 1.
    """
    union = list(labels) if labels is not None else union_of_classes(classes)
    column = {label: index for index, label in enumerate(union)}
    n_samples = np.asarray(probabilities[0]).shape[0]
    total = np.zeros((n_samples, len(union)))
    for member_probabilities, member_classes in zip(probabilities, classes):
        columns = [column[label] for label in member_classes]
        total[:, columns] += np.asarray(member_probabilities, dtype=np.float64)
    return union, total / len(probabilities)


class MeanPrediction:
    """Bagging for regression: the mean of the members' values."""

    def combine(
        self,
        predictions: Mapping[str, MemberPrediction],
        classes: Sequence[ClassLabel] | None = None,
    ) -> Combined:
        return Combined(mean_prediction([member.values for member in predictions.values()]))

    def __repr__(self) -> str:
        return "MeanPrediction()"


class SoftVote:
    """Bagging for classification: the mean of the members' class probabilities, and the most
    probable class as the label (any number of classes)."""

    def combine(
        self,
        predictions: Mapping[str, MemberPrediction],
        classes: Sequence[ClassLabel] | None = None,
    ) -> Combined:
        members = list(predictions.values())
        labels, probabilities = soft_vote(
            [member.values for member in members],
            [member.classes or [] for member in members],
            classes,
        )
        return Combined(np.asarray(labels)[probabilities.argmax(axis=1)], probabilities)

    def __repr__(self) -> str:
        return "SoftVote()"


def _label_order(label: ClassLabel) -> tuple[int, float | str]:
    """Sort numbers before strings, each in natural order, so mixed labels never crash."""
    return (0, label) if isinstance(label, numbers.Real) else (1, str(label))
