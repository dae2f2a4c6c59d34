"""Federated averaging (FedAvg) and FedProx: the clients train, the master averages weights.

Read the flowchart (steps A-M), then :meth:`_fit` and :meth:`_round`, which call one named
method per lettered step. Each round the master samples some clients (``fraction_fit``,
``min_clients``: Flower's meaning), sends them the global weights, each trains locally on its
shard (:class:`~chimera_nb.FederatedClient`) and answers its new weights and its sample count
n_k; the master averages the *updates* ``new - global`` with the ``aggregator`` (by default
weighted by n_k, the same rule object a parameter server applies to gradients, so a robust
rule plugs into both) and adds the average to the global weights.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from .._exceptions import ChimeraError, ConfigurationError, FitDivergedError
from .._types import ModelType
from ..algorithms import Gradient, GradientAggregator, ShardGradient, WeightedMean
from ..wire import paths
from ..wire.federated_models import FederatedFit, FederatedFitOptions
from .base import Master, Quorum
from .broadcast import Broadcast, PendingBroadcast
from .client import WorkerClient
from .estimator import HasMethods, Interval, Options
from .federated_client import FederatedCalls
from .flowchart import Flowchart, chain
from .linear_model import PARAMETER_SERVER_PREDICT, FittedLinearModel

__all__ = ["FEDERATED_AVERAGING_FIT", "FederatedAveragingMaster"]

#: A round is D (sample) to K (update), then back to D; the letters match the parameter
#: server's where the step is the same (E sends, H gathers, I aggregates).
FEDERATED_AVERAGING_FIT = Flowchart(
    "federated-averaging fit",
    {
        "A": "idle",
        "B": "fit request received",
        "C": "initial fit: columns, statistics",
        "D": "sample clients",
        "E": "send global weights",
        "F": "wait: reply / timeout; quorum?",
        "G": "error to client",
        "H": "gather updates",
        "I": "weighted average (aggregator)",
        "J": "converged or rounds done?",
        "K": "update global weights",
        "L": "ok to client",
        "M": "end",
    },
    chain("ABCDEF")
    + (
        ("F", "G", "too few"),
        ("F", "H", "enough"),
        ("H", "I", ""),
        ("I", "J", ""),
        ("J", "K", ""),
        ("K", "D", "not done: next round"),
        ("K", "L", "done"),
        ("L", "M", ""),
        ("G", "M", ""),
    ),
)


class FederatedAveragingMaster(FittedLinearModel, Master):
    """Federated averaging (FedAvg) of linear models, with FedProx's proximal term.

    Parameters
    ----------
    model_type : {"regressor", "classifier"}
    n_rounds : int, default=50
        Rounds of federated training; each ends with one update of the global weights.
    local_epochs, local_steps : int, optional
        How long each client trains per round: epochs over its shard, or a number of
        mini-batch steps (give one of them; default: one epoch).
    batch_size : int or None, default=None
        Rows per local step; None: the whole shard (local gradient descent).
    learning_rate : float, default=0.1
        Local step size, in standardized units (as the parameter server's).
    mu : float, default=0.0
        FedProx: each client minimizes its loss plus ``mu/2 ||w - w_global||^2``; 0 is FedAvg.
    fraction_fit : float in (0, 1], default=1.0
        Fraction of the clients sampled each round (Flower's ``fraction_fit``).
    min_clients : int, default=1
        Sample at least this many clients per round (Flower's ``min_fit_clients``; its default
        is 2); a fit with fewer clients than this fails.
    aggregator : GradientAggregator, optional
        The rule over the clients' updates ``new - global`` (each weighted by n_k); default
        :class:`~chimera_nb.algorithms.WeightedMean`.
    quorum : None, int or "all", default=None
        Sampled clients that must answer a round: None means at least one.
    tol : float, default=0.0
        Stop when the global update is shorter than this (Euclidean norm, standardized units).
    random_state : int or None
        Seeds the sampling and each client's seed per round (mini-batches, noise): a run
        replays. None draws a seed, kept in ``seed_``.
    clip_norm : float, optional
        Each client scales its update down to this L2 norm before sending it.
    noise_multiplier : float, default=0.0
        Each client then adds Gaussian noise of standard deviation ``noise_multiplier *
        clip_norm`` per coordinate (requires ``clip_norm``). This is the Gaussian mechanism's
        noise, applied client-side; the kit computes no privacy accounting (no epsilon).
    timeout, max_retries : float and int, optional
        Per call to a client, as the parameter server's.

    Attributes
    ----------
    coef_, intercept_, classes_, standardizer_ : as :class:`~chimera_nb.ParameterServerMaster`
    history_ : list of RoundRecord
        Per round: answered (the sampled clients that replied), ``n_samples`` (n_k), the loss
        of the global weights on the answering clients' shards (before the round's update),
        and in ``extra``: ``sampled``, each client's ``update_norms`` as received and
        ``unclipped_norms`` as the clients reported them.
    spans_ : SpanLog
    seed_ : int
    loss_curve_ : list of float
    n_iter_ : int
        Updates of the global weights made.
    converged_ : bool

    Notes
    -----
    With ``local_steps=1``, ``batch_size=None`` and every client sampled, a round is exactly
    one step of full-batch gradient descent: FedAvg equals the parameter server (the clients
    train in the master's standardized units, as its weights are kept).

    Examples
    --------
    >>> from chimera_nb import FederatedAveragingMaster
    >>> FederatedAveragingMaster("regressor", mu=0.1)
    FederatedAveragingMaster('regressor', mu=0.1) [not fitted]
    """

    role = "FederatedAveragingMaster"
    fit_path = paths.FEDERATED_AVERAGING_FIT
    predict_path = paths.FEDERATED_AVERAGING_PREDICT
    flowcharts = (FEDERATED_AVERAGING_FIT, PARAMETER_SERVER_PREDICT)

    def __init__(
        self,
        model_type: ModelType = "regressor",
        *,
        n_rounds: int = 50,
        local_epochs: int | None = None,
        local_steps: int | None = None,
        batch_size: int | None = None,
        learning_rate: float = 0.1,
        mu: float = 0.0,
        fraction_fit: float = 1.0,
        min_clients: int = 1,
        aggregator: GradientAggregator | None = None,
        quorum: Quorum = None,
        tol: float = 0.0,
        random_state: int | None = None,
        clip_norm: float | None = None,
        noise_multiplier: float = 0.0,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        self.model_type = model_type
        self.n_rounds = n_rounds
        self.local_epochs = local_epochs
        self.local_steps = local_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.mu = mu
        self.fraction_fit = fraction_fit
        self.min_clients = min_clients
        self.aggregator = aggregator
        self.quorum = quorum
        self.tol = tol
        self.random_state = random_state
        self.clip_norm = clip_norm
        self.noise_multiplier = noise_multiplier
        self.timeout = timeout
        self.max_retries = max_retries

    _parameter_constraints = {
        **Master._parameter_constraints,
        "model_type": [Options("regressor", "classifier")],
        "n_rounds": [Interval(int, 1, None, closed="left")],
        "local_epochs": [None, Interval(int, 1, None, closed="left")],
        "local_steps": [None, Interval(int, 1, None, closed="left")],
        "batch_size": [None, Interval(int, 1, None, closed="left")],
        "learning_rate": [Interval(float, 0, None, closed="neither")],
        "mu": [Interval(float, 0, None, closed="left")],
        "fraction_fit": [Interval(float, 0, 1, closed="right")],
        "min_clients": [Interval(int, 1, None, closed="left")],
        "aggregator": [None, HasMethods("aggregate")],
        "tol": [Interval(float, 0, None, closed="left")],
        "clip_norm": [None, Interval(float, 0, None, closed="neither")],
        "noise_multiplier": [Interval(float, 0, None, closed="left")],
    }

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.local_epochs is not None and self.local_steps is not None:
            raise ConfigurationError(
                f"{type(self).__name__}: give local_epochs ({self.local_epochs}) or local_steps "
                f"({self.local_steps}), not both"
            )
        if self.noise_multiplier > 0 and self.clip_norm is None:
            raise ConfigurationError(
                f"{type(self).__name__}'s noise_multiplier={self.noise_multiplier} needs "
                "clip_norm: the noise's standard deviation is noise_multiplier * clip_norm"
            )

    @property
    def max_rounds(self) -> int:
        return self.n_rounds

    def _client(self, endpoints: Any, **options: Any) -> FederatedCalls:
        return FederatedCalls.like(super()._client(endpoints, **options))

    # -- fit: the flowchart, one named step per letter --------------------------------------

    async def _fit(self, client: FederatedCalls) -> None:
        self.events.publish(FEDERATED_AVERAGING_FIT, "B", n_workers=len(client.endpoints))
        try:
            await self._initial_fit(client)  # C
            for round_number in range(1, self.n_rounds + 1):
                self._follow_membership(client, round_number)
                if await self._round(client, round_number) or self._stop_requested:  # D ... K
                    break
            self._model = self._training  # the new model replaces the old one whole
        except ChimeraError as error:
            self.events.publish(FEDERATED_AVERAGING_FIT, "G", error=str(error))
            raise
        else:
            self.events.publish(
                FEDERATED_AVERAGING_FIT, "L", n_rounds=len(self.history_), loss=self.loss_curve_[-1]
            )
        finally:
            self.events.publish(FEDERATED_AVERAGING_FIT, "M")

    async def _round(self, client: FederatedCalls, round_number: int) -> bool:
        """Steps D to K of one round; whether the fit is done."""
        sampled = self._sample_clients(list(client.endpoints), round_number)  # D
        pending = self._send_global_weights(client, sampled, round_number)  # E
        replies = await self._wait_for_updates(pending, sampled, round_number)  # F -> G
        updates = self._gather_updates(replies, round_number)  # H
        update, loss = self._average(updates, round_number)  # I
        norm = float(np.linalg.norm(np.append(update.weights, update.bias)))
        done = self._converged_or_done(norm, loss, round_number)  # J
        self._update_global(update, round_number)  # K, then back to D (or L)
        self._record(
            replies,
            round_number,
            n_samples={name: u.n_samples for name, u in updates.items()},
            loss=loss,
            learning_rate=self.learning_rate,
            update_norm=norm,
            extra={
                "sampled": sampled,
                "update_norms": {
                    name: float(np.linalg.norm(np.append(u.weights, u.bias)))
                    for name, u in updates.items()
                },
                "unclipped_norms": {
                    name: reply.update_norm for name, reply in replies.results.items()
                },
            },
        )
        self.loss_curve_.append(loss)
        return done

    async def _initial_fit(self, client: WorkerClient) -> None:
        """Step C: the columns (from the first client that answers), the global
        standardization and classes (from every client), zero weights, and the fit's seed."""
        self.events.publish(FEDERATED_AVERAGING_FIT, "C")
        await self._start_from_zero(client)
        drawn = int(np.random.SeedSequence().generate_state(1)[0])
        self.seed_ = drawn if self.random_state is None else self.random_state
        self.loss_curve_: list[float] = []
        self.n_iter_, self.converged_ = 0, False

    def _sample_clients(self, names: list[str], round_number: int) -> list[str]:
        """Step D: ``max(int(fraction_fit * N), min_clients)`` clients, drawn without
        replacement from the round's seed (Flower's rule), in the order of ``names``."""
        n_sampled = max(int(self.fraction_fit * len(names)), self.min_clients)
        self.events.publish(FEDERATED_AVERAGING_FIT, "D", round_number, n_sampled=n_sampled)
        if n_sampled > len(names):
            raise ConfigurationError(
                f"{type(self).__name__}'s min_clients={self.min_clients} but only {len(names)} "
                "clients are available: lower min_clients or add clients"
            )
        if n_sampled == len(names):  # everyone: nothing to draw
            return list(names)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed_, round_number]))
        chosen = rng.choice(len(names), n_sampled, replace=False)
        return [names[index] for index in sorted(chosen)]

    def _client_seed(self, name: str, round_number: int) -> int:
        """A different, reproducible seed per client and round (its batches and noise)."""
        entropy = [self.seed_, round_number, zlib.crc32(name.encode())]
        return int(np.random.SeedSequence(entropy).generate_state(1)[0])

    def _send_global_weights(
        self, client: FederatedCalls, sampled: list[str], round_number: int
    ) -> PendingBroadcast:
        """Step E: send each sampled client the global weights (standardized units, with the
        standardization) and how to train; only the sampled clients are asked."""
        self.events.publish(FEDERATED_AVERAGING_FIT, "E", round_number, sampled=sampled)
        model, standardizer = self._training, self._training.standardizer
        requests = {}
        for name in sampled:
            options = FederatedFitOptions(
                learning_rate=self.learning_rate,
                local_epochs=self.local_epochs,
                local_steps=self.local_steps,
                batch_size=self.batch_size,
                mu=self.mu,
                seed=self._client_seed(name, round_number),
                classes=model.classes or None,
                target_mean=standardizer.target_mean,
                target_scale=standardizer.target_scale,
                clip_norm=self.clip_norm,
                noise_multiplier=self.noise_multiplier,
            )
            requests[name] = FederatedFit(
                model.weights,
                model.bias,
                standardizer.feature_mean,
                standardizer.feature_scale,
                options,
            )
        return client.broadcast(client.fed_fit, requests, round_number=round_number)

    async def _wait_for_updates(
        self, pending: PendingBroadcast, sampled: list[str], round_number: int
    ) -> Broadcast:
        """Step F: each sampled client answers, times out or fails; enough of them (the
        quorum, counted among the sampled), or G. If every one refused the weights as
        unusable (422), local training diverged: say so."""
        replies = await pending.wait()
        detail = {"answered": replies.answered, "failed": replies.failed}
        self.events.publish(FEDERATED_AVERAGING_FIT, "F", round_number, **detail)
        refused = [r for r in replies.failed.values() if r.startswith("answered HTTP 422")]
        if not replies.results and replies.failed and len(refused) == len(replies.failed):
            raise FitDivergedError(
                f"the fit diverged: every client refused round {round_number}: {refused[0]}. "
                f"Lower the learning rate (now {self.learning_rate})."
            )
        self._check_quorum(replies, len(sampled), f"round {round_number}")
        return replies

    def _gather_updates(self, replies: Broadcast, round_number: int) -> dict[str, ShardGradient]:
        """Step H: each client's update ``new - global``, weighted by its n_k, with its loss."""
        self.events.publish(FEDERATED_AVERAGING_FIT, "H", round_number)
        model = self._training
        return {
            name: ShardGradient(
                reply.weights - model.weights, reply.bias - model.bias, reply.n_samples, reply.loss
            )
            for name, reply in replies.results.items()
        }

    def _average(
        self, updates: dict[str, ShardGradient], round_number: int
    ) -> tuple[Gradient, float]:
        """Step I: one update from many (the aggregator's rule), and the loss of the global
        weights over the answering clients' samples."""
        self.events.publish(FEDERATED_AVERAGING_FIT, "I", round_number)
        update = (self.aggregator or WeightedMean()).aggregate(updates)
        answers = list(updates.values())
        loss = float(np.average([a.loss for a in answers], weights=[a.n_samples for a in answers]))
        if not np.isfinite(loss):
            raise FitDivergedError(
                f"the fit diverged: the loss became {loss} at round {round_number}. "
                f"Lower the learning rate (now {self.learning_rate})."
            )
        return update, loss

    def _converged_or_done(self, norm: float, loss: float, round_number: int) -> bool:
        """Step J: whether this is the last round (the update is below ``tol``, or the rounds
        are spent); the update is applied either way."""
        self.events.publish(FEDERATED_AVERAGING_FIT, "J", round_number, loss=loss)
        self.converged_ = norm < self.tol
        return self.converged_ or round_number >= self.n_rounds

    def _update_global(self, update: Gradient, round_number: int) -> None:
        """Step K: the global weights move by the averaged update."""
        self.events.publish(FEDERATED_AVERAGING_FIT, "K", round_number)
        self._training.weights = self._training.weights + update.weights
        self._training.bias = self._training.bias + update.bias
        self.n_iter_ += 1
