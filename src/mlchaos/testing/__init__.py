"""The bundled test upstream: a toy model served over the Open Inference Protocol v2.

Tests and the example experiments run against it; ``mlchaos upstream serve`` runs it as a
process. ``make_dataset`` writes synthetic rows that go with the toy model.
"""

from mlchaos.testing._toy import TOY_FEATURES, TOY_MODEL, make_dataset, toy_predict, toy_score
from mlchaos.testing._upstream import (
    Upstream,
    serve_upstream_forever,
    start_upstream,
    upstream_app,
)

__all__ = [
    "TOY_FEATURES",
    "TOY_MODEL",
    "Upstream",
    "make_dataset",
    "serve_upstream_forever",
    "start_upstream",
    "toy_predict",
    "toy_score",
    "upstream_app",
]
