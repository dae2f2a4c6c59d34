"""The masters: coordinators that drive workers round by round over REST.

* :class:`ParameterServerMaster`: distributed gradient descent (data parallelism);
* :class:`AggregationMaster`: distributed bagging (model and hybrid parallelism).

Each follows the seed's flowcharts and publishes every step on its :class:`EventBus`.
"""

from .aggregation import AggregationMaster
from .base import Master, RoundRecord
from .client import Broadcast, WorkerClient
from .events import FLOWCHARTS, EventBus, Flowchart, StepEvent
from .parameter_server import ParameterServerMaster

__all__ = [
    "FLOWCHARTS",
    "AggregationMaster",
    "Broadcast",
    "EventBus",
    "Flowchart",
    "Master",
    "ParameterServerMaster",
    "RoundRecord",
    "StepEvent",
    "WorkerClient",
]
