"""The lifecycle enums read well in a notebook and still compare to their strings."""

from __future__ import annotations

from chimera_nb import WorkerState
from chimera_nb.states import ClusterState, WorkerFault


def test_states_print_as_code_and_equal_their_values():
    # Execute
    shown = repr({"worker1": WorkerState.UP, "cluster": ClusterState.RUNNING})

    # Assert
    assert shown == "{'worker1': WorkerState.UP, 'cluster': ClusterState.RUNNING}"
    assert WorkerState.SLOW == "slow" and WorkerFault("killed") is WorkerFault.KILLED


def test_a_suspect_worker_lies_between_slow_and_failed():
    # Execute
    order = list(WorkerState)

    # Assert
    assert WorkerState("suspect") is WorkerState.SUSPECT
    assert repr(WorkerState.SUSPECT) == "WorkerState.SUSPECT"
    assert order.index(WorkerState.SLOW) < order.index(WorkerState.SUSPECT)
    assert order.index(WorkerState.SUSPECT) < order.index(WorkerState.FAILED)
