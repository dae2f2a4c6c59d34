"""The REST paths of the seed (Chimera), kept verbatim so that its clients still work."""

HEALTH = "/health"
METRICS = "/metrics"  # not in the seed: Prometheus metrics (see chimera_nb.wire.metrics)

# Masters (called by a person, a notebook or a script)
AGGREGATION_FIT = "/v1/chimera/aggregation/fit"
AGGREGATION_PREDICT = "/v1/chimera/aggregation/predict"
PARAMETER_SERVER_FIT = "/v1/chimera/parameter-server/fit"
PARAMETER_SERVER_PREDICT = "/v1/chimera/parameter-server/predict"

# Bagging workers (RegressionWorker, ClassificationWorker)
MODEL_FIT = "/v1/chimera/model/fit"
MODEL_PREDICT = "/v1/chimera/model/predict"

# SGD workers
SGD_REQUEST_DATA_SAMPLE = "/v1/chimera/sgd/request-data-sample"
SGD_FIT_STEP = "/v1/chimera/sgd/fit-step"
SGD_STATISTICS = "/v1/chimera/sgd/statistics"  # not in the seed: global standardization

# Teaching faults (not in the seed): make a worker a straggler, emulate its network
FAULTS_DELAY = "/v1/chimera/faults/delay"
FAULTS_NETWORK = "/v1/chimera/faults/network"

#: The paths the seed used before March 2025 (its examples published then still call them),
#: served as aliases of today's: same handlers, left out of the OpenAPI schema.
OLDER = {
    AGGREGATION_FIT: "/v1/chimera-aggregation/fit",
    AGGREGATION_PREDICT: "/v1/chimera-aggregation/predict",
    PARAMETER_SERVER_FIT: "/v1/chimera-parameter-server/fit",
    PARAMETER_SERVER_PREDICT: "/v1/chimera-parameter-server/predict",
    MODEL_FIT: "/v1/chimera-model/fit",
    MODEL_PREDICT: "/v1/chimera-model/predict",
    SGD_REQUEST_DATA_SAMPLE: "/v1/chimera-sgd/request-data-sample",
    SGD_FIT_STEP: "/v1/chimera-sgd/fit-step",
}

#: Endpoints that carry data (rows to predict, weight vectors), under both names: their
#: bodies may be large. Every other endpoint takes a small control body, or none.
DATA = frozenset(
    name
    for path in (AGGREGATION_PREDICT, PARAMETER_SERVER_PREDICT, MODEL_PREDICT, SGD_FIT_STEP)
    for name in (path, OLDER[path])
)

# -- Sharded parameter servers (issue 12): parameter shards, and the SGD worker's side --------
# A parameter shard holds some blocks of the weights (placed by a hash ring); workers pull
# weights from it and push gradient slices to it, the master tells it to aggregate and apply.
SHARDED_PARAMETER_SERVER_FIT = "/v1/chimera/sharded-parameter-server/fit"
SHARDED_PARAMETER_SERVER_PREDICT = "/v1/chimera/sharded-parameter-server/predict"
SHARD_BLOCKS = "/v1/chimera/shard/blocks"  # POST a frame of blocks: hold (or overwrite) them
SHARD_PULL = "/v1/chimera/shard/pull"  # POST {"blocks": [...] or null}: a frame of them
SHARD_DROP = "/v1/chimera/shard/drop"  # POST {"blocks": [...]}: forget them (they moved)
SHARD_PUSH = "/v1/chimera/shard/push"  # POST a frame: one worker's gradient slices of a round
SHARD_PROPOSE = "/v1/chimera/shard/propose"  # POST: weighted mean of a round's slices, a step
SHARD_COMMIT = "/v1/chimera/shard/commit"  # POST: take the proposed step
SGD_SHARDED_PLAN = "/v1/chimera/sgd/sharded-plan"  # POST: where each block lives, the units
SGD_SHARDED_STEP = "/v1/chimera/sgd/sharded-step"  # POST: pull, compute, push one round

DATA = DATA | {SHARDED_PARAMETER_SERVER_PREDICT, SHARD_BLOCKS, SHARD_PUSH, SGD_SHARDED_PLAN}

# -- Ring all-reduce (issue 12, not in the seed) ----------------------------------------------
# The master hands each worker its place in the ring, then only starts rounds; the workers
# pass gradient chunks to their right neighbour (chunk), and give the master their replica
# of the weights at the end (weights).
RING_ALLREDUCE_FIT = "/v1/chimera/ring-allreduce/fit"
RING_ALLREDUCE_PREDICT = "/v1/chimera/ring-allreduce/predict"
RING_SETUP = "/v1/chimera/ring/setup"
RING_ROUND = "/v1/chimera/ring/round"
RING_CHUNK = "/v1/chimera/ring/chunk"
RING_WEIGHTS = "/v1/chimera/ring/weights"
DATA = DATA | {RING_SETUP, RING_CHUNK}  # weights and chunks: as large as the model

# -- Federated learning (issue 13, not in the seed) -------------------------------------------
# The master sends a sampled client the global weights (standardized units, with the global
# standardization); the client trains on its shard for a few local epochs or steps and answers
# its new weights and its number of samples.
FEDERATED_AVERAGING_FIT = "/v1/chimera/federated-averaging/fit"
FEDERATED_AVERAGING_PREDICT = "/v1/chimera/federated-averaging/predict"
FED_FIT = "/v1/chimera/fed/fit"  # POST a frame: global weights and local-training options
DATA = DATA | {FEDERATED_AVERAGING_PREDICT, FED_FIT}

# -- Byzantine workers (issue 13, not in the seed) ---------------------------------------------
# A teaching fault: the worker corrupts what it answers to training calls (sign-flipped,
# scaled or noise gradients) until told to be honest; see chimera_nb.algorithms.robust.
FAULTS_BYZANTINE = "/v1/chimera/faults/byzantine"

# -- Feature-split model parallelism (issue 14, not in the seed) ------------------------------
# Each worker holds some columns of every row and their weights; the master holds the labels.
# A round: scores (apply the last step, answer the partial scores X_b W_b^T), then gradient
# (the residuals dL/dz in, the block's gradient r^T X_b / n out).
FEATURE_SPLIT_FIT = "/v1/chimera/feature-split/fit"
FEATURE_SPLIT_PREDICT = "/v1/chimera/feature-split/predict"
FEATURE_SPLIT_BLOCK = "/v1/chimera/feature-split/block"  # GET: columns, rows, statistics
FEATURE_SPLIT_SETUP = "/v1/chimera/feature-split/setup"  # POST: standardization, zero weights
FEATURE_SPLIT_SCORES = "/v1/chimera/feature-split/scores"  # POST a frame: step -> scores
FEATURE_SPLIT_GRADIENT = "/v1/chimera/feature-split/gradient"  # POST a frame: residuals
FEATURE_SPLIT_FINISH = "/v1/chimera/feature-split/finish"  # POST: keep and send the weights
FEATURE_SPLIT_BLOCK_SCORES = "/v1/chimera/feature-split/block-scores"  # POST new rows' columns
DATA = DATA | {
    FEATURE_SPLIT_PREDICT,
    FEATURE_SPLIT_SETUP,
    FEATURE_SPLIT_SCORES,
    FEATURE_SPLIT_GRADIENT,
    FEATURE_SPLIT_BLOCK_SCORES,
}

# -- Pipeline parallelism (issue 14, not in the seed) ------------------------------------------
# The master gives each stage worker its layers and its neighbours (setup), then sends every
# stage its ops for a step (step); stages POST activations forward and gradients backward to
# each other, and give the master their layers at the end (weights). data: what a stage holds.
PIPELINE_PARALLEL_FIT = "/v1/chimera/pipeline-parallel/fit"
PIPELINE_PARALLEL_PREDICT = "/v1/chimera/pipeline-parallel/predict"
PIPELINE_DATA = "/v1/chimera/pipeline/data"
PIPELINE_SETUP = "/v1/chimera/pipeline/setup"
PIPELINE_STEP = "/v1/chimera/pipeline/step"
PIPELINE_ACTIVATION = "/v1/chimera/pipeline/activation"  # a frame from the previous stage
PIPELINE_GRADIENT = "/v1/chimera/pipeline/gradient"  # a frame from the next stage
PIPELINE_WEIGHTS = "/v1/chimera/pipeline/weights"
DATA = DATA | {
    PIPELINE_PARALLEL_PREDICT,
    PIPELINE_SETUP,
    PIPELINE_STEP,
    PIPELINE_ACTIVATION,
    PIPELINE_GRADIENT,
}
