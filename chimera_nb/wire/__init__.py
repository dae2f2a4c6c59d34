"""The wire layer: what travels between masters and workers (pydantic models, the seed's
paths, JSON and binary encodings) and the server plumbing both sides share."""

from . import paths
from .encoding import BINARY, JSON, BodyError, Encoding, decode_frame, encode_frame, is_binary
from .fit_step import FitStep, FitStepResult
from .models import (
    DataSampleResponse,
    DelayRequest,
    ErrorResponse,
    FitResponse,
    FitStepRequest,
    FitStepResponse,
    HealthResponse,
    ModelFitRequest,
    ModelFitResponse,
    PredictRequest,
    PredictResponse,
    StatisticsResponse,
)

__all__ = [
    "BINARY",
    "JSON",
    "BodyError",
    "DataSampleResponse",
    "DelayRequest",
    "Encoding",
    "ErrorResponse",
    "FitResponse",
    "FitStep",
    "FitStepRequest",
    "FitStepResponse",
    "FitStepResult",
    "HealthResponse",
    "ModelFitRequest",
    "ModelFitResponse",
    "PredictRequest",
    "PredictResponse",
    "StatisticsResponse",
    "decode_frame",
    "encode_frame",
    "is_binary",
    "paths",
]
