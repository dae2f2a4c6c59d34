"""The client of federated learning: an SGD worker that also trains locally for a round.

Federated averaging (FedAvg, McMahan et al. 2017) moves the *training*, not only the gradient,
to where the data is: each sampled client starts from the global weights, takes several
mini-batch SGD steps on its own shard, and sends back its new weights; the raw rows never
leave it. FedProx (Li et al. 2020) adds ``mu/2 ||w - w_global||^2`` to each client's local
objective, which keeps a client with very different data from drifting far in one round.

The client trains in the master's **standardized units** (the global feature means and scales
it is sent, as the parameter server's master keeps its weights), so one local full-batch step
is exactly one step of the parameter server. It keeps no state between rounds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping

import numpy as np
from fastapi import FastAPI, Request, Response

from ..algorithms import n_outputs
from ..wire import BodyError, paths
from ..wire.fastpath import RawHandler
from ..wire.federated_models import FederatedFit, FederatedFitResult
from ..wire.server import error_responses
from .sgd import SGDWorker

__all__ = ["MAX_LOCAL_STEPS", "FederatedClient", "local_batches"]

#: The most local steps one round may ask of a client.
MAX_LOCAL_STEPS = 1_000_000

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_FED_FIT_DOCS = {
    "requestBody": {"required": True, "content": {"application/octet-stream": _BINARY}},
}


def local_batches(
    n_samples: int, batch_size: int | None, rng: np.random.Generator
) -> Iterator[slice | np.ndarray]:
    """The rows of each local step, epoch after epoch, without end: a full-batch step takes
    every row (in order); mini-batches walk a new shuffle of the shard each epoch, the last
    batch of an epoch holding what is left."""
    while True:
        if batch_size is None or batch_size >= n_samples:
            yield slice(None)
            continue
        order = rng.permutation(n_samples)
        for start in range(0, n_samples, batch_size):
            yield order[start : start + batch_size]


class FederatedClient(SGDWorker):
    """An :class:`SGDWorker` that also answers ``POST /v1/chimera/fed/fit`` (a round of
    :class:`~chimera_nb.FederatedAveragingMaster`); its ``fit-step`` is the SGD worker's, so
    one cluster serves the parameter server and federated averaging.

    Update noise, when asked (``clip_norm`` and ``noise_multiplier``), is applied here, on the
    client, before the update leaves it: the update ``new - global`` is scaled down to L2 norm
    at most ``clip_norm``, then Gaussian noise of standard deviation
    ``noise_multiplier * clip_norm`` is added to each coordinate. That is the Gaussian
    mechanism's noise; the kit computes no privacy accounting (no epsilon, no delta), so it
    makes no privacy claim.

    Examples
    --------
    >>> from chimera_nb import FederatedClient
    >>> FederatedClient("regressor")
    FederatedClient('regressor')
    """

    role = "FederatedClient"

    def local_fit(self, request: FederatedFit) -> FederatedFitResult:
        """Train from ``request``'s global weights on this shard; the new weights."""
        options = request.options
        if len(request.feature_mean) != self.X_.shape[1]:
            raise BodyError(
                "weights",
                f"are for {len(request.feature_mean)} features but this shard has "
                f"{self.X_.shape[1]}: {self.columns_}",
            )
        X = (self.X_ - request.feature_mean) / request.feature_scale
        if self.model_type == "regressor":
            n_classes, targets = 0, (self.y_ - options.target_mean) / options.target_scale
        else:
            n_classes, targets = self._class_indices(options.classes)
        expected = (n_outputs(self.model_type, n_classes), X.shape[1])
        if request.weights.shape != expected:
            raise BodyError(
                "weights", f"has shape {request.weights.shape} but this shard needs {expected}"
            )
        seeds = np.random.SeedSequence(options.seed).spawn(2)  # batches, noise
        n_steps = options.local_steps or (options.local_epochs or 1) * -(
            -len(X) // (options.batch_size or len(X))
        )
        if n_steps > MAX_LOCAL_STEPS:  # one request must not hold the worker for hours
            raise BodyError(
                "local_steps" if options.local_steps else "local_epochs",
                f"asks for {n_steps} local steps; at most {MAX_LOCAL_STEPS} per round",
            )
        weights, bias = request.weights.copy(), request.bias.copy()
        loss = None
        batches = local_batches(len(X), options.batch_size, np.random.default_rng(seeds[0]))
        for _, rows in zip(range(n_steps), batches):
            step_loss, weights_gradient, bias_gradient = self._loss_and_gradient(
                weights, bias, X[rows], targets[rows], n_classes
            )
            if loss is None and isinstance(rows, slice):  # a full batch at the global weights
                loss = step_loss
            if options.mu:  # FedProx: the gradient of mu/2 ||w - w_global||^2
                weights_gradient = weights_gradient + options.mu * (weights - request.weights)
                bias_gradient = bias_gradient + options.mu * (bias - request.bias)
            weights = weights - options.learning_rate * weights_gradient
            bias = bias - options.learning_rate * bias_gradient
        if loss is None:  # mini-batches: the loss of the global weights on the whole shard
            loss = self._loss_and_gradient(request.weights, request.bias, X, targets, n_classes)[0]
        update = np.append(weights - request.weights, bias - request.bias)
        norm = float(np.linalg.norm(update))
        if not (np.isfinite(update).all() and np.isfinite(loss)):
            raise BodyError(
                "learning_rate",
                f"{options.learning_rate} makes local training diverge on this shard (the "
                "weights became infinite or NaN): lower the master's learning rate",
            )
        update = self._noised(update, norm, options.clip_norm, options.noise_multiplier, seeds[1])
        update = self._corrupt(update)  # a Byzantine client (cluster.byzantine) lies here
        new_weights = request.weights + update[: weights.size].reshape(weights.shape)
        new_bias = request.bias + update[weights.size :]
        return FederatedFitResult(new_weights, new_bias, len(X), float(loss), norm, n_steps)

    @staticmethod
    def _noised(
        update: np.ndarray,
        norm: float,
        clip_norm: float | None,
        noise_multiplier: float,
        seed: np.random.SeedSequence,
    ) -> np.ndarray:
        """The update clipped to L2 norm ``clip_norm`` (if set), plus Gaussian noise of
        standard deviation ``noise_multiplier * clip_norm`` per coordinate (seeded)."""
        if clip_norm is None:
            return update
        clipped = update * min(1.0, clip_norm / norm) if norm > 0 else update
        if noise_multiplier == 0:
            return clipped
        noise = np.random.default_rng(seed).normal(0.0, noise_multiplier * clip_norm, update.size)
        return clipped + noise

    # -- the endpoint -----------------------------------------------------------------------

    def _add_routes(self, app: FastAPI) -> None:
        super()._add_routes(app)

        @app.post(paths.FED_FIT, openapi_extra=_FED_FIT_DOCS, responses=error_responses(422))
        async def fed_fit(request: Request) -> Response:
            # For /docs: the fast route answers this path before FastAPI sees it.
            status, body, headers = await self._answer_fed_fit(
                await request.body(), request.headers
            )
            return Response(body, status, headers=headers)

    def _fast_routes(self) -> dict[str, RawHandler]:
        return {**super()._fast_routes(), paths.FED_FIT: self._answer_fed_fit}

    async def _answer_fed_fit(
        self, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        """A round's call, inline (local training of a linear model takes milliseconds)."""
        if self.delay_:
            await asyncio.sleep(self.delay_)  # a straggler, made on purpose
        answer, answer_headers = self.local_fit(FederatedFit.decode(body, headers)).encode()
        return 200, answer, answer_headers
