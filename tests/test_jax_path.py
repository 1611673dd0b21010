"""The engine on the JAX backend with TensorFlow unavailable, as on a lent GPU machine: a smoke run trains, resumes
from its checkpoint and is recorded with its backend, in a fresh process (the backend is chosen at import); and one
epoch trains in mixed float16 (what a GPU picks) from a re-encoded copy of the data, recorded as re-encoded."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = r"""
import importlib.abc, json, sys
from pathlib import Path

class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"{name} is blocked: the JAX path must not need TensorFlow")

sys.meta_path.insert(0, NoTensorFlow())
from utils.nets.augment import AugmentConfig
from utils.data import load_utkface
from utils.nets.models import ARTICLE
from utils.base.profiles import Profile
from utils.data.synthetic import make_synthetic
from utils.train.pipeline import make_pipeline, targets
from utils.train.training import train_run

work = Path(sys.argv[1])
folder = make_synthetic(n=120, seed=1, root=work)
data = load_utkface(folder, 32, synthetic=True, cache_dir=work / "cache", workers=1, verbose=False)
profile = Profile("tiny", "synthetic", 32, epochs=2, patience=2, batch_size=32)
out = {}
for name, config in [
    ("multi, augmented", ARTICLE.with_(augment=AugmentConfig())),
    ("OR-CNN", ARTICLE.with_(tasks="age", age_head="or")),
]:
    run = train_run(config, data, profile, seed=0, verbose="progress", checkpoint_dir=work / name)
    again = train_run(config, data, profile, seed=0, verbose=0, checkpoint_dir=work / name)  # finished: restores only
    out[name] = {"loss": run.metrics["loss"], "again": again.metrics["loss"], "epochs": run.epochs_run,
                 "versions": run.versions, "batchnorm": run.batchnorm, "precision": run.precision,
                 "encoding": run.data["encoding"]}
from utils.data.reencode import reencode
reencode(data, work / "webp")
copy = load_utkface(work / "webp", 32, synthetic=True, cache_dir=work / "cache", workers=1, verbose=False)
one = Profile("tiny", "synthetic", 32, epochs=1, patience=1, batch_size=32)
run = train_run(ARTICLE, copy, one, seed=0, verbose=0, precision="mixed_float16")
out["re-encoded"] = {"data": run.data, "precision": run.precision, "epochs": run.epochs_run,
                     "loss": run.metrics["loss"], "same": [data.fingerprint, data.split_id]}
rows = data.indices("train")
x, y = make_pipeline(data.images, targets(data, rows, ARTICLE), rows, 32, shuffle=True, seed=0)[0]
out["batch"] = [list(x.shape), float(x.min()), float(x.max()), sorted(y)]
out["tensorflow imported"] = "tensorflow" in sys.modules
print("RESULT " + json.dumps(out))
"""


def test_the_engine_trains_on_jax_without_tensorflow(tmp_path):
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    out = json.loads(line[len("RESULT ") :])
    assert out["tensorflow imported"] is False
    assert out["batch"] == [
        [32, 32, 32, 3],
        pytest.approx(out["batch"][1]),
        pytest.approx(out["batch"][2]),
        ["age", "gender"],
    ]
    assert 0 <= out["batch"][1] <= out["batch"][2] <= 1
    for name in ("multi, augmented", "OR-CNN"):
        r = out[name]
        assert r["epochs"] == 2 and r["versions"]["backend"] == "jax" and "jax" in r["versions"]
        assert r["batchnorm"] == "keras"  # the fused kernel is TensorFlow's
        assert r["again"] == pytest.approx(r["loss"], rel=1e-5)  # the checkpoint's best weights, restored exactly
        assert r["encoding"] == "jpeg"
    copy = out["re-encoded"]
    assert copy["data"]["encoding"] == "webp-q80" and copy["precision"] == "mixed_float16" and copy["epochs"] == 1
    assert [copy["data"]["fingerprint"], copy["data"]["split_id"]] == copy["same"]  # the source's identity
    assert abs(copy["loss"]) < float("inf") and copy["loss"] == copy["loss"]  # finite: neither inf nor NaN
    assert proc.stdout.count("  epoch 1/2") == 2
