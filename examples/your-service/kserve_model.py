"""Run with KServe's own Python: a KServe ModelServer serving a scikit-learn model, as KServe's
custom-model guide has one write it, over KServe v1, OIP v2 HTTP and OIP v2 gRPC at once.

v1 answers ``{"predictions": [class, ...]}``; v2 answers an INT64 ``predict`` tensor.
"""

import argparse

import joblib
import numpy as np
from kserve import InferRequest, Model, ModelServer, model_server
from kserve.utils.utils import get_predict_response


class SklearnModel(Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.model = joblib.load(path)
        self.ready = True

    def predict(self, payload, headers=None, response_headers=None):
        if isinstance(payload, InferRequest):
            rows = payload.inputs[0].as_numpy()
            predicted = self.model.predict(rows.reshape(len(rows), -1))
            return get_predict_response(payload, predicted, self.name)
        rows = np.asarray(payload["instances"], dtype=float)
        return {"predictions": self.model.predict(rows).tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()
    server = ModelServer(http_port=args.http_port, grpc_port=args.grpc_port, workers=1)
    server.start([SklearnModel(args.model_name, args.model_path)])
