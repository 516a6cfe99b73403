"""The code under test: a small client of a model served over the Open Inference Protocol v2.

What a team would own: a timeout on every call, one retry on a server error, and a default
answer (the majority class) when the model cannot answer in time — so the product keeps working
when the model server does not.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

DEFAULT_LABEL = 0  # the majority class: what the product shows without a model


@dataclass(frozen=True)
class Answer:
    label: int
    source: str  # "model" or "default"


class ModelClient:
    def __init__(self, base_url: str, *, timeout: float = 0.1, attempts: int = 2) -> None:
        self.url = f"{base_url}/v2/models/toy/infer"
        self.timeout = timeout
        self.attempts = attempts

    def predict(self, features: list[float]) -> Answer:
        body = json.dumps(
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": features}]}
        ).encode()
        for _ in range(self.attempts):
            request = urllib.request.Request(
                self.url, data=body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    answer = json.loads(response.read())
                return Answer(int(answer["outputs"][0]["data"][0]), "model")
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    raise  # our request is wrong: no retry hides that
            except OSError:  # timed out, reset, refused
                pass
        return Answer(DEFAULT_LABEL, "default")
