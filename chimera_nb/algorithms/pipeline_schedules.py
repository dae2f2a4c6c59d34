"""Pipeline schedules as data: which forward and backward each stage runs, in which order.

A network's layers are cut into ``p`` stages (:func:`split_layers`), a batch into ``m``
micro-batches (:func:`micro_batch_slices`). Stage ``s`` runs ``("F", i)`` (forward of
micro-batch ``i``: it needs stage ``s - 1``'s output of ``i``) and ``("B", i)`` (backward: it
needs stage ``s + 1``'s input gradient of ``i``) in the order of its list. A forward keeps
("stashes") what its backward needs until that backward runs: that is the memory a schedule
costs.

* **GPipe** (:func:`gpipe`): every forward, then every backward. Stage ``s`` stashes all
  ``m`` micro-batches at once.
* **1F1B** (:func:`one_f_one_b`, PipeDream-flush): stage ``s`` runs ``p - s - 1`` forwards
  (warm-up), then alternates one forward and one backward, then the remaining backwards
  (cool-down). Never more than ``p - s`` stashed.

Both leave every stage idle part of the time: the *bubble*, ``(p - 1) / (m + p - 1)`` of the
step when every forward and every backward takes the same time (:func:`bubble_fraction`);
more micro-batches shrink it. :func:`measured_bubble` measures it from a step's compute
intervals.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .ring import chunk_slices

__all__ = [
    "SCHEDULES",
    "Op",
    "Schedule",
    "bubble_fraction",
    "check_stage_ops",
    "compute_label",
    "forward_only",
    "gpipe",
    "make_pipeline_schedule",
    "measured_bubble",
    "micro_batch_slices",
    "one_f_one_b",
    "ops_from_spans",
    "parse_compute_label",
    "peak_stashed",
    "schedule_ops",
    "split_layers",
]

#: ``("F", i)`` or ``("B", i)``: the forward or backward of micro-batch ``i`` (0-based).
Op = tuple[str, int]
#: ``schedule(p, m)`` -> one op list per stage, stage 0 first.
Schedule = Callable[[int, int], list[list[Op]]]


def gpipe(n_stages: int, n_microbatches: int) -> list[list[Op]]:
    """GPipe: each stage runs every forward, then every backward (in the same order).

    >>> gpipe(2, 2)
    [[('F', 0), ('F', 1), ('B', 0), ('B', 1)], [('F', 0), ('F', 1), ('B', 0), ('B', 1)]]
    """
    ops = [("F", i) for i in range(n_microbatches)] + [("B", i) for i in range(n_microbatches)]
    return [list(ops) for _ in range(n_stages)]


def one_f_one_b(n_stages: int, n_microbatches: int) -> list[list[Op]]:
    """1F1B (PipeDream-flush): warm-up of ``p - s - 1`` forwards at stage ``s``, then one
    forward and one backward in turn, then the cool-down's backwards.

    >>> one_f_one_b(2, 3)[0]
    [('F', 0), ('F', 1), ('B', 0), ('F', 2), ('B', 1), ('B', 2)]
    """
    schedules = []
    for stage in range(n_stages):
        warm_up = min(n_stages - stage - 1, n_microbatches)
        ops: list[Op] = [("F", i) for i in range(warm_up)]
        forwards, backwards = warm_up, 0
        while forwards < n_microbatches:  # steady state: one forward, one backward
            ops += [("F", forwards), ("B", backwards)]
            forwards, backwards = forwards + 1, backwards + 1
        ops += [("B", i) for i in range(backwards, n_microbatches)]  # cool-down
        schedules.append(ops)
    return schedules


def forward_only(n_stages: int, n_microbatches: int) -> list[list[Op]]:
    """Predicting: every stage runs the forwards only, nothing is stashed."""
    return [[("F", i) for i in range(n_microbatches)] for _ in range(n_stages)]


#: The schedules a master takes by name.
SCHEDULES: dict[str, Schedule] = {"gpipe": gpipe, "1f1b": one_f_one_b}


def make_pipeline_schedule(schedule: str | Schedule) -> Schedule:
    """A schedule by name (``"gpipe"``, ``"1f1b"``), or ``schedule`` itself if callable."""
    if callable(schedule):
        return schedule
    if schedule not in SCHEDULES:
        raise ValueError(
            f"schedule must be one of {sorted(SCHEDULES)} or a callable, got {schedule!r}"
        )
    return SCHEDULES[schedule]


def check_stage_ops(ops: Sequence[Op], n_microbatches: int, *, training: bool = True) -> None:
    """Raise ``ValueError`` saying what is wrong unless ``ops`` runs the forward of every
    micro-batch ``0 ... m - 1`` once and (``training``) its backward once, after it."""
    seen: set[Op] = set()
    for position, (kind, index) in enumerate(ops):
        if kind not in ("F", "B"):
            raise ValueError(f"op {position} is {(kind, index)!r}: its kind must be 'F' or 'B'")
        if not 0 <= index < n_microbatches:
            raise ValueError(
                f"op {position} is {(kind, index)!r}, but micro-batch {index} does not exist "
                f"(the step has {n_microbatches}: 0 ... {n_microbatches - 1})"
            )
        if (kind, index) in seen:
            raise ValueError(f"op {position} runs {(kind, index)!r} a second time")
        if kind == "B" and not training:
            raise ValueError(f"op {position} is {(kind, index)!r}: predicting runs forwards only")
        if kind == "B" and ("F", index) not in seen:
            raise ValueError(
                f"op {position} runs ('B', {index}) before ('F', {index}): a backward needs "
                "what its forward stashed"
            )
        seen.add((kind, index))
    kinds = ("F", "B") if training else ("F",)
    missing = [(k, i) for k in kinds for i in range(n_microbatches) if (k, i) not in seen]
    if missing:
        raise ValueError(f"the ops never run {missing[:4]}{'...' if len(missing) > 4 else ''}")


def schedule_ops(schedule: Schedule, n_stages: int, n_microbatches: int) -> list[list[Op]]:
    """``schedule(p, m)``, checked: one list per stage, each passing :func:`check_stage_ops`;
    else ``ValueError`` saying which stage's list is wrong and how."""
    ops = schedule(n_stages, n_microbatches)
    where = f"(p={n_stages}, m={n_microbatches})"
    if not isinstance(ops, (list, tuple)) or len(ops) != n_stages:
        raise ValueError(f"it must return one op list per stage {where}, got {ops!r:.200}")
    checked = []
    for stage, stage_ops in enumerate(ops):
        try:
            stage_ops = [(str(kind), int(index)) for kind, index in stage_ops]
            check_stage_ops(stage_ops, n_microbatches)
        except (TypeError, ValueError) as error:
            raise ValueError(f"the list of stage {stage} {where}: {error}") from None
        checked.append(stage_ops)
    return checked


def peak_stashed(ops: Sequence[Op]) -> int:
    """The most micro-batches one stage holds activations of at once, running ``ops``
    (a forward stashes, its backward frees).

    >>> peak_stashed(gpipe(3, 8)[0]), peak_stashed(one_f_one_b(3, 8)[0])
    (8, 3)
    """
    held = peak = 0
    for kind, _ in ops:
        held += 1 if kind == "F" else -1
        peak = max(peak, held)
    return peak


def bubble_fraction(n_stages: int, n_microbatches: int) -> float:
    """The share of a step each stage idles, in theory: ``(p - 1) / (m + p - 1)``.

    >>> bubble_fraction(3, 1), bubble_fraction(3, 8)
    (0.6666666666666666, 0.2)
    """
    return (n_stages - 1) / (n_microbatches + n_stages - 1)


def measured_bubble(busy: Mapping[str, Sequence[tuple[float, float]]]) -> float:
    """The bubble of one step, from each stage's compute intervals ``(start, end)``:
    ``1 - (time computing, all stages) / (p * makespan)``, the makespan running from the
    first compute's start to the last one's end. Sending and waiting count as idle."""
    intervals = [interval for stage in busy.values() for interval in stage]
    if not intervals:
        return 0.0
    makespan = max(end for _, end in intervals) - min(start for start, _ in intervals)
    if makespan <= 0:
        return 0.0
    computing = sum(end - start for start, end in intervals)
    return 1.0 - computing / (len(busy) * makespan)


def split_layers(n_layers: int, n_stages: int) -> list[range]:
    """Contiguous, balanced ranges of layers, one per stage (the first stages take one layer
    more when they cannot be equal).

    >>> split_layers(3, 2)
    [range(0, 2), range(2, 3)]
    """
    if not 1 <= n_stages <= n_layers:
        raise ValueError(
            f"{n_layers} layers cannot be cut into {n_stages} stages: each stage needs at "
            "least one layer (add hidden layers or use fewer stage workers)"
        )
    return [range(part.start, part.stop) for part in chunk_slices(n_layers, n_stages)]


def micro_batch_slices(n_rows: int, n_microbatches: int) -> list[slice]:
    """Where a batch of ``n_rows`` is cut into micro-batches (``np.array_split``'s cuts, as
    a ring's chunks)."""
    return chunk_slices(n_rows, n_microbatches)


_LABEL = re.compile(r"^compute ([FB])\((\d+)\)$")


def compute_label(op: Op) -> str:
    """The ``endpoint`` of a compute span: ``"compute F(3)"``."""
    return f"compute {op[0]}({op[1]})"


def parse_compute_label(endpoint: str) -> Op | None:
    """The op of a compute span's ``endpoint``, or None for any other span."""
    match = _LABEL.match(endpoint)
    return (match.group(1), int(match.group(2))) if match else None


def ops_from_spans(spans: Iterable[Any]) -> dict[str, list[tuple[Op, float, float]]]:
    """Each stage's computed ops as they ran, from spans (anything with ``worker``,
    ``endpoint``, ``start`` and ``end``): worker -> ``[(op, start, end), ...]`` by start.
    Other spans (calls, sends) are left out."""
    ran: dict[str, list[tuple[Op, float, float]]] = {}
    for span in sorted(spans, key=lambda span: span.start):
        op = parse_compute_label(span.endpoint)
        if op is not None:
            ran.setdefault(span.worker, []).append((op, span.start, span.end))
    return ran
