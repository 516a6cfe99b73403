"""Run with a model server's own Python: train a small scikit-learn model on the breast-cancer
dataset bundled with scikit-learn, and write what the tests need into DIR:

- ``model.joblib``: the model (scaler + logistic regression), trained on the first 329 rows;
- ``rows.csv``: the other 240 rows to replay: ``row_id``, the 30 features, ``target``;
- ``expected.json``: scikit-learn's own ``predict`` and ``predict_proba[:, 1]`` of each of
  those rows, in file order: the independent computation the served answers must equal.
"""

import json
import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

out = Path(sys.argv[1])
frame = load_breast_cancer(as_frame=True).frame
frame.columns = [c.replace(" ", "_") for c in frame.columns]
features = [c for c in frame.columns if c != "target"]
train, replay = frame.iloc[:329], frame.iloc[329:].reset_index(drop=True)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
model.fit(train[features].to_numpy(), train["target"].to_numpy())
joblib.dump(model, out / "model.joblib")
replay.insert(0, "row_id", range(len(replay)))
replay.to_csv(out / "rows.csv", index=False)
rows = replay[features].to_numpy()
expected = {
    "predict": model.predict(rows).tolist(),
    "proba": model.predict_proba(rows)[:, 1].tolist(),
    "labels": replay["target"].tolist(),
}
(out / "expected.json").write_text(json.dumps(expected))
