"""Feature-split model parallelism: the workers hold the columns, the master holds the labels.

Read the flowchart (steps A-M), then :meth:`_fit` and :meth:`_round`, which call one named
method per lettered step. The course calls this *model parallelism* for a linear model (and
vertical federated learning when the columns belong to different parties): the weights are
split by column block, each :class:`~chimera_nb.FeatureSplitWorker` holds one block of the
columns and of the weights, and the master, the **label holder**, adds the partial scores,
computes the loss and the residuals ``r = dL/dz`` and sends each worker the residuals of its
rows (:mod:`chimera_nb.algorithms.vertical`).

The same master runs the **hybrid** layout, data-parallel replicas of the feature split: R
row groups by C column blocks (``LocalCluster.from_feature_blocks(..., replicas=R)``). Within
a row group the partial scores are summed (model parallel); the R gradients of a column block
are averaged weighted by rows (data parallel, the parameter server's
:class:`~chimera_nb.algorithms.WeightedMean`), and every replica takes that same step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._exceptions import ChimeraError, ConfigurationError, FitDivergedError
from .._types import ModelType
from ..algorithms import (
    ColumnStatistics,
    ShardGradient,
    WeightedMean,
    make_schedule,
    n_outputs,
    residuals_for,
    union_of_classes,
)
from ..wire import paths
from ..wire.feature_split_models import FeatureSplitSetup, MatrixFrame
from .base import Master
from .broadcast import Broadcast
from .feature_grid import FeatureGrid, require_every_block
from .feature_split_charts import FEATURE_SPLIT_FIT, FEATURE_SPLIT_PREDICT
from .feature_split_client import FeatureSplitCalls
from .feature_split_predict import FeatureSplitPredictions
from .linear_model import GRADIENT_DESCENT_CONSTRAINTS, FittedLinearModel, LinearModel

__all__ = ["FEATURE_SPLIT_FIT", "FEATURE_SPLIT_PREDICT", "FeatureSplitMaster"]

_FIT = FEATURE_SPLIT_FIT


class BlockUpdate(NamedTuple):
    """The step a round's gradient proposes (step I), taken in J (the bias) and at the next
    round's D (each block, on its workers)."""

    blocks: list[np.ndarray]  # each block's gradient, averaged over its replicas
    bias: np.ndarray  # the bias gradient
    learning_rate: float
    norm: float


class FeatureSplitMaster(FeatureSplitPredictions, FittedLinearModel, Master):
    """Full-batch gradient descent of a linear model whose columns are split over workers.

    Parameters
    ----------
    model_type : {"regressor", "classifier"}
        Linear regression (squared loss), or logistic (2 classes) / softmax (3+) regression.
    learning_rate, learning_rate_schedule, power_t, max_iter, tol, alpha
        As :class:`~chimera_nb.ParameterServerMaster`'s (standardized units).
    timeout, max_retries : float and int, optional
        Per call to a worker.

    Attributes
    ----------
    coef_, intercept_, classes_, standardizer_, columns_ : as the parameter server's
        ``columns_`` lists the blocks' columns, block after block (``coef_`` follows it).
    blocks_ : list of list of str
        The columns of each block.
    replicas_ : int
        Row groups: 1 is model parallel, more is hybrid (each block held that many times).
    history_ : list of RoundRecord
        Per round: loss, who answered (both calls), latencies (both calls added), rows.
    spans_ : SpanLog
        One span per call: block, setup, scores and gradient per round, finish, predictions.
    loss_curve_ : list of float
    n_iter_ : int
    converged_ : bool

    Notes
    -----
    **The labels stay here.** The workers hold columns only; give the labels to the master:
    ``master.fit(cluster, y)``, as scikit-learn's ``fit(X, y)`` with ``X`` on the workers.
    For the REST endpoint and a :class:`~chimera_nb.Lab`, ``master.hold_labels(y)`` first.
    ``y[i]`` is the label of row ``i`` of the workers' blocks (the rows are aligned by
    position, as vertical federated learning aligns them by an entity id).

    **The bias lives here**: it needs no feature, only the residuals, which are here.

    **Quorum is all**: a block's partial scores cannot be left out of a sum, so a round
    with a worker missing fails at once, naming it and its columns. The grid is read once,
    in step C: workers a cluster adds or removes during a fit are not followed.

    A round is two calls per worker: ``scores`` (apply the last round's step, answer the
    partial scores) and ``gradient`` (residuals in, the block's gradient out). Convergence is
    checked on the whole gradient before any step (the parameter server's J before K), so a
    round is exactly one step of full-batch gradient descent on all the columns: the weights
    equal the parameter server's with ``batch_size=None`` (and
    :func:`~chimera_nb.algorithms.gradient_descent`'s) to float rounding.

    Examples
    --------
    >>> from chimera_nb import FeatureSplitMaster, FeatureSplitWorker, LocalCluster
    >>> FeatureSplitMaster("regressor", max_iter=50)
    FeatureSplitMaster('regressor', max_iter=50) [not fitted]
    >>> worker = FeatureSplitWorker("regressor")  # no labels: X only
    >>> with LocalCluster.from_feature_blocks(worker, X, n_blocks=3) as cluster:  # doctest: +SKIP
    ...     master = FeatureSplitMaster("regressor", max_iter=200).fit(cluster, y)
    """

    role = "FeatureSplitMaster"
    fit_path = paths.FEATURE_SPLIT_FIT
    predict_path = paths.FEATURE_SPLIT_PREDICT
    flowcharts = (FEATURE_SPLIT_FIT, FEATURE_SPLIT_PREDICT)
    quorum = "all"  # not a parameter: every block must answer every round
    _labels: np.ndarray | None = None

    def __init__(
        self,
        model_type: ModelType = "regressor",
        *,
        learning_rate: float = 0.1,
        learning_rate_schedule: str = "constant",
        power_t: float = 0.25,
        max_iter: int = 1000,
        tol: float = 1e-6,
        alpha: float = 0.0,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        self.model_type = model_type
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.power_t = power_t
        self.max_iter = max_iter
        self.tol = tol
        self.alpha = alpha
        self.timeout = timeout
        self.max_retries = max_retries

    _parameter_constraints = {**Master._parameter_constraints, **GRADIENT_DESCENT_CONSTRAINTS}

    @property
    def max_rounds(self) -> int:
        """``max_iter`` updates take ``max_iter + 1`` rounds: the last one only evaluates."""
        return self.max_iter + 1

    def hold_labels(self, y: Any) -> FeatureSplitMaster:
        """Keep the labels ``y`` here (the master is the label holder); returns self."""
        labels = np.ravel(np.asarray(y))
        if self.model_type == "regressor":
            try:
                labels = labels.astype(np.float64)
            except (TypeError, ValueError):
                raise ConfigurationError("a regressor's labels y must be numbers") from None
            if not np.isfinite(labels).all():
                raise ConfigurationError("a regressor's labels y must be finite numbers")
        self._labels = labels
        return self

    def fit(self, workers: Any, y: Any = None, *, wait: bool = True) -> Any:
        """Fit on ``workers`` (each holding a block of columns) with the labels ``y`` (or
        those given to :meth:`hold_labels`); see :meth:`Master.fit` for ``wait``."""
        if y is not None:
            self.hold_labels(y)
        return super().fit(workers, wait=wait)

    def _validate_params(self) -> None:
        super()._validate_params()
        if self._labels is None:
            raise ConfigurationError(
                "FeatureSplitMaster holds the labels, and has none: call fit(workers, y), or "
                "hold_labels(y) before serving or fitting from a Lab"
            )

    def _client(self, endpoints: Any, **options: Any) -> FeatureSplitCalls:
        return FeatureSplitCalls.like(super()._client(endpoints, **options))

    # -- fit: the flowchart, one named step per letter --------------------------------------

    async def _fit(self, client: FeatureSplitCalls) -> None:
        self.events.publish(_FIT, "B", n_workers=len(client.endpoints))
        try:
            await self._initial_fit(client)  # C
            for round_number in range(1, self.max_iter + 2):
                converged, update = await self._round(client, round_number)  # D ... I
                if converged or round_number > self.max_iter or self._stop_requested:
                    self.converged_ = converged
                    break
                self._update_model(update, round_number)  # J, then back to D
            await self._gather_weights(client)  # K
            self._model = self._training  # the new model replaces the old one whole
        except ChimeraError as error:
            self.events.publish(_FIT, "G", error=str(error))
            raise
        else:
            self.events.publish(_FIT, "L", n_rounds=len(self.history_), loss=self.loss_curve_[-1])
        finally:
            self.events.publish(_FIT, "M")

    async def _round(
        self, client: FeatureSplitCalls, round_number: int
    ) -> tuple[bool, BlockUpdate]:
        """Steps D to I of one round: whether it converged, and the update it proposes."""
        scores = await self._ask_scores(client, round_number)  # D
        loss, residuals = self._loss_and_residuals(scores, round_number)  # E
        gradients = await self._gather_gradients(client, residuals, round_number)  # F
        block_steps, bias_step = self._average_replicas(gradients, residuals, round_number)  # H
        converged, update = self._check_convergence(block_steps, bias_step, loss, round_number)
        self._record(
            _both(scores, gradients),
            round_number,
            n_samples={n: int(f.meta["n_samples"]) for n, f in gradients.results.items()},
            loss=loss,
            learning_rate=update.learning_rate,
            update_norm=update.norm,
        )
        self.loss_curve_.append(loss)
        return converged, update

    async def _initial_fit(self, client: FeatureSplitCalls) -> None:
        """Step C: which columns and rows each worker holds (the grid), the standardization
        of every block merged over its row groups, the classes from the labels, and each
        worker's setup (its columns' standardization; zero weights)."""
        self.events.publish(_FIT, "C")
        names = list(client.endpoints)
        answers = await client.broadcast(client.block, names).wait()
        require_every_block(answers, "the block request")
        grid = FeatureGrid.of(answers.results, len(self._labels))
        classes, target = self._classes_and_target()
        standardizer = grid.standardizer(target)
        if self.model_type == "regressor":
            targets = standardizer.transform_target(self._labels)
        else:
            position = {label: index for index, label in enumerate(classes)}
            targets = np.array([position[label] for label in self._labels.tolist()])
        outputs = n_outputs(self.model_type, len(classes))
        setups = {}
        for name in names:
            block = grid.offsets[grid.block_of(name)]
            setups[name] = FeatureSplitSetup(
                feature_mean=standardizer.feature_mean[block].tolist(),
                feature_scale=standardizer.feature_scale[block].tolist(),
                n_outputs=outputs,
            )
        require_every_block(await client.broadcast(client.setup, setups).wait(), "the setup")
        weights, bias = np.zeros((outputs, len(grid.columns))), np.zeros(outputs)
        self._training = LinearModel(
            self.model_type, standardizer, classes, grid.columns, weights, bias
        )
        self._grid, self._targets = grid, targets
        self._residuals = residuals_for(self.model_type, len(classes))
        self._schedule = make_schedule(
            self.learning_rate_schedule, self.learning_rate, self.power_t
        )
        self._step: tuple[list[np.ndarray], float] | None = None  # applied by the next D
        self.blocks_, self.replicas_ = grid.blocks, len(grid.row_groups)
        self.loss_curve_: list[float] = []
        self.n_iter_, self.converged_ = 0, False

    def _classes_and_target(self) -> tuple[list, ColumnStatistics | None]:
        """A classifier's classes (from the labels, here); a regressor's target statistics."""
        if self.model_type == "regressor":
            return [], ColumnStatistics.of(self._labels)
        classes = union_of_classes([self._labels.tolist()])
        if len(classes) < 2:
            raise ConfigurationError(f"a classifier needs at least 2 classes; y holds {classes}")
        return classes, None

    async def _ask_scores(self, client: FeatureSplitCalls, round_number: int) -> Broadcast:
        """Step D: send every worker the step of its block from the last round (none in the
        first), and ask for its partial scores at the new weights; every one must answer."""
        self.events.publish(_FIT, "D", round_number)
        requests = {}
        for group in self._grid.row_groups:
            for block, name in enumerate(group.workers):
                if self._step is None:
                    requests[name] = MatrixFrame("step", np.zeros((0, 0)))
                else:
                    steps, rate = self._step
                    requests[name] = MatrixFrame("step", steps[block], learning_rate=rate)
        replies = await client.broadcast(client.scores, requests, round_number=round_number).wait()
        require_every_block(replies, f"round {round_number}'s scores", self._grid)
        return replies

    def _loss_and_residuals(self, scores: Broadcast, round_number: int) -> tuple[float, Any]:
        """Step E: in each row group, the sum of the blocks' partial scores plus the bias;
        then the loss (plus the L2 term) and the residuals ``dL/dz`` of every row."""
        self.events.publish(_FIT, "E", round_number)
        z = np.vstack(
            [sum(scores.results[name].matrix for name in g.workers) for g in self._grid.row_groups]
        )
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging fit: said below
            loss, residuals = self._residuals(z + self._training.bias, self._targets)
        first = self._grid.row_groups[0].workers  # every replica holds the same weights
        loss += 0.5 * self.alpha * sum(scores.results[n].meta["weights_norm2"] for n in first)
        if not np.isfinite(loss):
            raise FitDivergedError(
                f"the fit diverged: the loss became {loss} at round {round_number}. Lower "
                f"the learning rate (now {self.learning_rate})."
            )
        return loss, residuals

    async def _gather_gradients(
        self, client: FeatureSplitCalls, residuals: np.ndarray, round_number: int
    ) -> Broadcast:
        """Step F: send each worker the residuals of its rows; gather its block's gradient."""
        self.events.publish(_FIT, "F", round_number)
        requests = {
            name: MatrixFrame("residuals", residuals[group.rows], alpha=self.alpha)
            for group in self._grid.row_groups
            for name in group.workers
        }
        pending = client.broadcast(client.gradient, requests, round_number=round_number)
        replies = await pending.wait()
        require_every_block(replies, f"round {round_number}'s gradients", self._grid)
        return replies

    def _average_replicas(
        self, gradients: Broadcast, residuals: np.ndarray, round_number: int
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Step H: each block's gradient, averaged over its replicas weighted by their rows
        (the parameter server's rule; one replica: itself); the bias gradient is the mean
        residual, computed here."""
        self.events.publish(_FIT, "H", round_number)
        no_bias = np.zeros(residuals.shape[1])
        block_steps = [
            WeightedMean()
            .aggregate(
                {
                    group.workers[block]: ShardGradient(
                        gradients.results[group.workers[block]].matrix, no_bias, group.n_samples, 0
                    )
                    for group in self._grid.row_groups
                }
            )
            .weights
            for block in range(len(self._grid.blocks))
        ]
        return block_steps, residuals.mean(axis=0)

    def _check_convergence(
        self, block_steps: list[np.ndarray], bias_step: np.ndarray, loss: float, round_number: int
    ) -> tuple[bool, BlockUpdate]:
        """Step I: the update the gradient proposes (every block's and the bias's), and
        whether it is shorter than ``tol``."""
        self.events.publish(_FIT, "I", round_number, loss=loss)
        rate = self._schedule(round_number)
        with np.errstate(over="ignore", invalid="ignore"):
            squares = sum(float(np.sum((-rate * g) ** 2)) for g in [*block_steps, bias_step])
        update = BlockUpdate(block_steps, bias_step, rate, float(np.sqrt(squares)))
        return update.norm < self.tol, update

    def _update_model(self, update: BlockUpdate, round_number: int) -> None:
        """Step J: the bias moves here; each block's step goes with the next round's D."""
        self.events.publish(_FIT, "J", round_number)
        self._training.bias = self._training.bias + -update.learning_rate * update.bias
        self._step = (update.blocks, update.learning_rate)
        self.n_iter_ += 1

    async def _gather_weights(self, client: FeatureSplitCalls) -> None:
        """Step K: every worker keeps its weights for predictions; the first row group's
        blocks, side by side, are the model's weights (``coef_``)."""
        self.events.publish(_FIT, "K")
        names = [name for group in self._grid.row_groups for name in group.workers]
        replies = await client.broadcast(client.finish, names).wait()
        require_every_block(replies, "the end of the fit", self._grid)
        first = self._grid.row_groups[0].workers
        self._training.weights = np.hstack([replies.results[name].matrix for name in first])
        # what predictions ask, kept with the model: the first row group, block by block
        self._predictors = {name: client.endpoints[name] for name in first}
        self._predictor_columns = dict(zip(first, self._grid.offsets))


def _both(scores: Broadcast, gradients: Broadcast) -> Broadcast:
    """A round's record of its two calls: who answered both, and both latencies added."""
    latency = {
        name: scores.latency_ms.get(name, 0.0) + gradients.latency_ms.get(name, 0.0)
        for name in gradients.results
    }
    return Broadcast(dict(gradients.results), {**scores.failed, **gradients.failed}, latency)
