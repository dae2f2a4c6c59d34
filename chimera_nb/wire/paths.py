"""The REST paths of the seed (Chimera), kept verbatim so that its clients still work."""

HEALTH = "/health"

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

# Teaching faults (not in the seed): make a worker a straggler
FAULTS_DELAY = "/v1/chimera/faults/delay"
