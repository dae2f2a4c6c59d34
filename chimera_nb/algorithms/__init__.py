"""The algorithms layer: losses, gradients, aggregation rules, prediction combiners, sharding,
standardization and learning-rate schedules, in plain numpy. No I/O and no asyncio, so that
every distributed result can be checked against the same functions run in one process.
"""

from .aggregation import Gradient, GradientAggregator, ShardGradient, WeightedMean, weighted_mean
from .combiners import (
    Combined,
    MeanPrediction,
    MemberPrediction,
    PredictionCombiner,
    SoftVote,
    mean_prediction,
    soft_vote,
    union_of_classes,
)
from .compression import QSGD, Compressed, Compressor, EncoderState, TopK
from .consistency import ASP, BSP, SSP, Consistency, make_consistency, staleness_aware
from .cost_model import (
    AlphaBeta,
    RoundCost,
    ledger,
    ring_round,
    round_seconds,
    sharded_round,
    star_round,
)
from .gradient_descent import GradientDescentResult, gradient_descent, update_step
from .hashing import BIAS_BLOCK, HashRing, Move, ParameterBlocks, stable_hash
from .linear import decision_function, loss_for, n_outputs, predict_proba
from .losses import LossAndGradient, l2_penalty, logistic_loss, softmax_loss, squared_loss
from .preprocessing import ColumnStatistics, Standardizer
from .robust import (
    BYZANTINE_SCALE,
    CoordinateMedian,
    Krum,
    TrimmedMean,
    byzantine_answer,
    krum_scores,
)
from .rounds import FirstK, RoundPolicy, WaitForAll
from .schedules import Constant, InverseScaling, LearningRateSchedule, make_schedule
from .sharding import (
    contiguous_shards,
    dirichlet_shards,
    hash_shards,
    label_shards,
    quantity_skew,
    random_shards,
    range_shards,
    split,
)

__all__ = [
    "ASP",
    "BIAS_BLOCK",
    "AlphaBeta",
    "BSP",
    "BYZANTINE_SCALE",
    "QSGD",
    "SSP",
    "Consistency",
    "CoordinateMedian",
    "ColumnStatistics",
    "FirstK",
    "Combined",
    "Compressed",
    "Compressor",
    "Constant",
    "Gradient",
    "EncoderState",
    "GradientAggregator",
    "GradientDescentResult",
    "HashRing",
    "InverseScaling",
    "Krum",
    "LearningRateSchedule",
    "LossAndGradient",
    "MeanPrediction",
    "MemberPrediction",
    "Move",
    "ParameterBlocks",
    "PredictionCombiner",
    "RoundCost",
    "RoundPolicy",
    "ShardGradient",
    "SoftVote",
    "Standardizer",
    "TopK",
    "TrimmedMean",
    "WaitForAll",
    "WeightedMean",
    "byzantine_answer",
    "contiguous_shards",
    "decision_function",
    "dirichlet_shards",
    "gradient_descent",
    "hash_shards",
    "krum_scores",
    "l2_penalty",
    "label_shards",
    "ledger",
    "logistic_loss",
    "loss_for",
    "make_consistency",
    "make_schedule",
    "mean_prediction",
    "n_outputs",
    "predict_proba",
    "quantity_skew",
    "random_shards",
    "range_shards",
    "ring_round",
    "round_seconds",
    "sharded_round",
    "soft_vote",
    "softmax_loss",
    "split",
    "staleness_aware",
    "star_round",
    "squared_loss",
    "stable_hash",
    "union_of_classes",
    "update_step",
    "weighted_mean",
]
