"""The masters: coordinators that drive workers round by round over REST.

* :class:`ParameterServerMaster`: distributed gradient descent (data parallelism);
* :class:`ShardedParameterServerMaster`: the same, with the weights on parameter shards
  placed by consistent hashing;
* :class:`RingAllReduceMaster`: the same, with the workers averaging gradients around a
  ring (no parameter server);
* :class:`FederatedAveragingMaster`: federated averaging (FedAvg, FedProx): clients train
  locally and the master averages their weights;
* :class:`FeatureSplitMaster`: model parallelism by feature blocks (and its hybrid with data
  parallelism): the workers hold the columns, the master the labels;
* :class:`PipelineMaster`: a multilayer perceptron's layers cut across stage workers
  (pipeline parallelism: micro-batches, GPipe and 1F1B schedules, the bubble);
* :class:`AggregationMaster`: distributed bagging (an ensemble; the seed's "model" and
  "hybrid" parallelism).

A parameter server's fit can save checkpoints and resume from one after a crash
(:mod:`.checkpoint`).

Every master is a :class:`Master`: an estimator that follows its flowcharts, publishes every
step on its :class:`EventBus`, and leaves a :class:`RoundRecord` per round in ``history_`` and
a span per call in ``spans_``. A new algorithm is one more module here.
"""

from .aggregation import AGGREGATION_FIT, AGGREGATION_PREDICT, AggregationMaster
from .base import Master, Quorum
from .broadcast import Broadcast, PendingBroadcast
from .checkpoint import CheckpointedFit
from .checkpoint_file import Checkpoint, read_checkpoint, write_checkpoint
from .client import SharedClient, WorkerClient
from .clocks import AppliedUpdate, ClockedRounds
from .endpoints import resolve_endpoints
from .estimator import Estimator, HasMethods, Interval, Options
from .events import EventBus, StepEvent
from .feature_split import FEATURE_SPLIT_FIT, FEATURE_SPLIT_PREDICT, FeatureSplitMaster
from .federated import FEDERATED_AVERAGING_FIT, FederatedAveragingMaster
from .flowchart import Flowchart, chain
from .history import RoundRecord
from .linear_model import PARAMETER_SERVER_PREDICT
from .pacing import Pacer
from .parameter_server import PARAMETER_SERVER_FIT, ParameterServerMaster
from .parameter_server_charts import PARAMETER_SERVER_FIT_ASP, PARAMETER_SERVER_FIT_SSP
from .pipeline import PIPELINE_FIT, PipelineMaster
from .pipeline_predict import PIPELINE_PREDICT
from .ring_allreduce import RING_ALLREDUCE_FIT, RingAllReduceMaster
from .running import FitHandle, FitStarts, fit_starts
from .sharded_server import SHARDED_FIT, ShardedParameterServerMaster

__all__ = [
    "AppliedUpdate",
    "ClockedRounds",
    "PARAMETER_SERVER_FIT_ASP",
    "PARAMETER_SERVER_FIT_SSP",
    "AGGREGATION_FIT",
    "FEATURE_SPLIT_FIT",
    "FEATURE_SPLIT_PREDICT",
    "FEDERATED_AVERAGING_FIT",
    "AGGREGATION_PREDICT",
    "PARAMETER_SERVER_FIT",
    "PARAMETER_SERVER_PREDICT",
    "PIPELINE_FIT",
    "PIPELINE_PREDICT",
    "SHARDED_FIT",
    "RING_ALLREDUCE_FIT",
    "AggregationMaster",
    "Broadcast",
    "Checkpoint",
    "CheckpointedFit",
    "Estimator",
    "EventBus",
    "FeatureSplitMaster",
    "FederatedAveragingMaster",
    "FitHandle",
    "FitStarts",
    "Flowchart",
    "HasMethods",
    "Interval",
    "Master",
    "Options",
    "Pacer",
    "ParameterServerMaster",
    "PendingBroadcast",
    "PipelineMaster",
    "Quorum",
    "RingAllReduceMaster",
    "RoundRecord",
    "SharedClient",
    "ShardedParameterServerMaster",
    "StepEvent",
    "WorkerClient",
    "chain",
    "fit_starts",
    "read_checkpoint",
    "resolve_endpoints",
    "write_checkpoint",
]
