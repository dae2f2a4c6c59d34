"""The workers: FastAPI apps that hold a shard of the data and answer a master.

* :class:`SGDWorker` computes gradients for a parameter server (data parallelism);
* :class:`RingWorker` keeps a replica and averages gradients with its ring neighbours
  (ring all-reduce, no server in the middle);
* :class:`RegressionWorker` and :class:`ClassificationWorker` fit a scikit-learn estimator
  for bagging (an ensemble: the seed's "model" and "hybrid" parallelism);
* :class:`FederatedClient` trains locally for federated averaging (FedAvg, FedProx);
* :class:`FeatureSplitWorker` holds a block of columns and their weights (model
  parallelism by features);
* :class:`PipelineStageWorker` holds a range of a network's layers and passes activations
  and gradients to its neighbours (pipeline parallelism);
* :class:`ParameterShard` holds some blocks of the weights, and :class:`ShardedSGDWorker`
  pulls from and pushes to the shards (sharded parameter servers).

Any of them serves with ``worker.serve()``, as in the seed.
"""

from .bagging import ClassificationWorker, RegressionWorker
from .base import Worker
from .feature_split import FeatureSplitWorker
from .federated import FederatedClient
from .parameter_shard import ParameterShard
from .pipeline_stage import PipelineStageWorker
from .ring import RingWorker
from .sgd import SGDWorker
from .sharded_sgd import ShardedSGDWorker

__all__ = [
    "ClassificationWorker",
    "FeatureSplitWorker",
    "FederatedClient",
    "ParameterShard",
    "PipelineStageWorker",
    "RegressionWorker",
    "RingWorker",
    "SGDWorker",
    "ShardedSGDWorker",
    "Worker",
]
