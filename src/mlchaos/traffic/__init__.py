"""Replay traffic: a dataset sent open-loop at a fixed rate, one observation per request.

``load_dataset`` reads the rows, ``RequestBuilder`` turns a row into an Open Inference
Protocol v2 or plain JSON request, ``run_traffic`` sends them on schedule and records what came
back, reading the prediction and the answering model with paths such as ``outputs[0].data[0]``.
Labels come from a dataset column or, delayed, from a label service. The configuration models
(``TrafficConfig``, ``LiveTraffic``) are part of the experiment file: :mod:`mlchaos.spec`.
"""

from mlchaos.traffic._dataset import Dataset, input_columns, load_dataset
from mlchaos.traffic._extract import to_degradation, to_model, to_prediction
from mlchaos.traffic._live import run_live
from mlchaos.traffic._requests import RequestBuilder, fill_template
from mlchaos.traffic._run import TrafficResult, classify_error, first_request, run_traffic

__all__ = [
    "Dataset",
    "RequestBuilder",
    "TrafficResult",
    "classify_error",
    "fill_template",
    "first_request",
    "input_columns",
    "load_dataset",
    "run_live",
    "run_traffic",
    "to_degradation",
    "to_model",
    "to_prediction",
]
