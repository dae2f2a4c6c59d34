"""A pipeline stage's wires to its neighbours: a link sends, one POST per activation (forward,
to the next stage) or gradient (backward, to the previous stage), one span per POST; the inbox
receives.

As a ring's link (:mod:`.ring_link`): no retries (a step cannot be redone by one stage
alone), a span the stage returns to the master, an error naming the link, and the
``X-Chimera-Peer`` header so that the neighbour's emulated network applies this link's
settings. The receiver only stores the frame and answers at once, so a send never waits for
the receiver's own work: stages cannot deadlock on sends.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import numpy as np
from fastapi import HTTPException

from ..auth import bearer_header
from ..spans import Span
from ..wire import encode_frame
from ..wire.pipeline_models import PipelineMessageMeta
from .network import PEER_HEADER
from .ring_link import RingLinkError, post_frame

__all__ = ["PipelineInbox", "PipelineLink"]


class PipelineLink:
    """Sends frames from stage ``sender`` to its neighbour ``receiver`` at ``url + path``
    (``what``: "activation" or "gradient", for messages)."""

    def __init__(
        self, receiver: str, url: str, path: str, what: str, sender: str, token: str | None
    ) -> None:
        self.receiver = receiver
        self.base_url = url.rstrip("/")
        self.url = self.base_url + path
        self.path = path
        self.what = what
        self.sender = sender
        self._headers = {PEER_HEADER: sender, **bearer_header(token)}

    async def send(
        self,
        session: aiohttp.ClientSession,
        array: np.ndarray,
        meta: PipelineMessageMeta,
        spans: list[Span],
    ) -> None:
        """POST ``array`` (raw float64) with ``meta``; append its span to ``spans``; raise
        :class:`RingLinkError` (502) naming the link unless the neighbour accepted it."""
        body, headers = encode_frame([array], meta.model_dump())
        reason = await post_frame(
            session,
            self.url,
            body,
            {**headers, **self._headers},
            spans,
            worker=self.receiver,
            endpoint=self.path,
            round_number=meta.step,
            peer=self.sender,
            worker_url=self.base_url,
        )
        if reason:
            raise RingLinkError(
                502,
                f"{self.sender} could not send the {self.what} of micro-batch "
                f"{meta.micro_batch} (step {meta.step}) to {self.receiver}: the link "
                f"{self.sender} -> {self.receiver} failed ({reason})",
            )


class PipelineInbox:
    """The frames a stage's neighbours sent, by step, kind ("activation" or "gradient") and
    micro-batch: each a future that its op awaits. A frame may come before its op runs (a
    send never waits for the receiver's schedule) or after (the op waits, at most its
    timeout, then fails naming what never came)."""

    def __init__(self) -> None:
        self._slots: dict[tuple[int, str, int], asyncio.Future] = {}

    def _slot(self, key: tuple[int, str, int]) -> asyncio.Future:
        if key not in self._slots:
            self._slots[key] = asyncio.get_running_loop().create_future()
        return self._slots[key]

    def put(self, step: int, kind: str, index: int, array: np.ndarray) -> None:
        """Keep a frame for its op; a second one of the same micro-batch is refused (409)."""
        slot = self._slot((step, kind, index))
        if slot.done():
            raise HTTPException(409, f"the {kind} of micro-batch {index} (step {step}) came twice")
        slot.set_result(array)

    async def get(
        self, step: int, kind: str, index: int, sender: str, where: str, timeout: float
    ) -> np.ndarray:
        """The frame, waited for at most ``timeout`` s; else :class:`RingLinkError` (504)."""
        started = time.monotonic()
        try:
            return await asyncio.wait_for(asyncio.shield(self._slot((step, kind, index))), timeout)
        except asyncio.TimeoutError:
            op = "forward" if kind == "activation" else "backward"
            raise RingLinkError(
                504,
                f"{where} waited {time.monotonic() - started:.3g} s for the {kind} of "
                f"micro-batch {index} (step {step}) from {sender}, and none came: {sender} "
                f"failed, the link {sender} -> {where} did, or {sender}'s schedule never "
                f"runs that micro-batch's {op} before waiting for this stage (a schedule "
                "that deadlocks)",
            ) from None

    def drop(self, step: int) -> None:
        """Forget a finished step's frames (those of a failed step may never be read)."""
        for key in [key for key in self._slots if key[0] == step]:
            del self._slots[key]
