"""A new head on a trained, frozen body: transfer learning in miniature.

A network trained only for age has learned features of faces; how much of gender do they already hold? Freeze the
whole network, read its features at a candidate layer (``LAYERS``: the conv body's output, or the features that feed
the age head), standardise them, and fit one sigmoid unit on them (logistic regression, trained with Keras in
seconds, early stopping on validation). The layer whose unit is best on validation is kept; the standardisation is
folded into the unit's weights, and the unit is added to the serving model as a ``female`` output, so that one
network and one forward pass can answer both questions; ``choose_gender`` then weighs it, on validation, against a
separate gender network (a second forward pass), and the predictor serves the winner.

    python -m utils.train.transfer gender results/laptop-real-*/models/RUN.keras   # fits, scores, rewrites the model
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from ..base.settings import seeded
from ..data import UTKFace
from ..nets.heads import binary_scores as scores  # accuracy and BCE, as the gender head scores itself

UNITS = "gender_units"
"""The folder, beside the kept models, where ``gender`` writes what it measured: one JSON per model, named after it
(a subfolder, so the results store never takes it for a run record)."""


def unit_record(model_path: Path) -> Path:
    """Where the gender unit of a kept model is described (no '-seed' in the name: it is not a run record)."""
    return Path(model_path).parent / UNITS / f"{Path(model_path).stem.replace('-seed', '.seed')}.gender.json"


def file_hash(path: Path) -> str:
    """SHA-256 of a file (which model a unit record belongs to)."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


LAYERS = ("flatten", "age_input")
"""Where a gender unit may read: the conv body's flattened output, or the input of the age head (the dense features)."""


def feature_tensor(model: keras.Model, layer: str = "age_input") -> keras.KerasTensor:
    """The features at ``layer`` ('age_input': what the age head reads)."""
    return model.get_layer("age").input if layer == "age_input" else model.get_layer(layer).output


def features(model: keras.Model, images: np.ndarray, layer: str = "age_input", batch_size: int = 256) -> np.ndarray:
    """The features at ``layer`` for uint8 images (frozen: inference mode), one row per image."""
    out = keras.Model(model.inputs, feature_tensor(model, layer)).predict(images, batch_size=batch_size, verbose=0)
    return out.reshape(len(out), -1)


@seeded
def fit_linear_head(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    seed: int = 0,
    epochs: int = 200,
    patience: int = 10,
    batch_size: int = 256,
    learning_rate: float = 1e-2,
) -> tuple[keras.Model, dict]:
    """One sigmoid unit on fixed features, Adam on binary cross-entropy,
    early stopping on validation loss (best kept)."""
    inputs = keras.Input((x_train.shape[1],), name="features")
    head = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="gender")(inputs))
    head.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy", metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
    history = head.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=epochs,
        batch_size=batch_size,
        callbacks=[stop],
        verbose=0,
    )
    return head, {k: [round(float(v), 5) for v in vals] for k, vals in history.history.items()}


def fold(head: keras.Model, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The unit's weights on raw features, from weights fitted on (x - mean) / std."""
    w, b = head.get_layer("gender").get_weights()
    return w / std[:, None], b - (mean / std) @ w


def with_gender_head(model: keras.Model, kernel: np.ndarray, bias: np.ndarray, layer: str = "age_input") -> keras.Model:
    """The serving model with a ``female`` output: a sigmoid unit with these weights on the features at ``layer``."""
    x = feature_tensor(model, layer)
    if len(x.shape) > 2:
        x = keras.layers.Flatten(name="gender_features")(x)
    dense = keras.layers.Dense(1, activation="sigmoid", name="gender", dtype="float32")
    p = dense(x)
    dense.set_weights([np.asarray(kernel, "float32"), np.asarray(bias, "float32")])
    outputs = {name: t for name, t in output_dict(model).items() if name != "female"}
    outputs["female"] = keras.layers.Identity(name="female", dtype="float32")(p)
    return keras.Model(model.inputs, outputs, name=model.name.removesuffix("_gender") + "_gender")


def output_dict(model: keras.Model) -> dict:
    """A serving model's outputs by name ('age', 'age_above', 'female')."""
    if not isinstance(model.output, dict):
        raise ValueError(f"model {model.name!r} has no named outputs: not a serving model (see utils.nets.serving)")
    return model.output


def gender(model_path: Path, data: UTKFace, seed: int = 0, layers: tuple[str, ...] = LAYERS) -> dict:
    """Fit a gender unit at each of ``layers`` of a kept age model, keep the best on validation, score it on validation
    and test, and rewrite the model with it (a ``female`` output); its record goes to ``unit_record(model_path)``."""
    t0 = time.perf_counter()
    model = keras.saving.load_model(model_path, compile=False)
    split = {s: data.indices(s) for s in ("train", "val", "test")}
    y = {s: data.table.gender.to_numpy()[rows].astype(np.float32) for s, rows in split.items()}
    fits = {}
    for layer in layers:
        feats = {s: features(model, data.images[rows], layer) for s, rows in split.items()}
        mean, std = feats["train"].mean(axis=0), feats["train"].std(axis=0) + 1e-6
        z = {s: (f - mean) / std for s, f in feats.items()}
        head, history = fit_linear_head(z["train"], y["train"], z["val"], y["val"], seed=seed)
        fits[layer] = {
            "head": head,
            "history": history,
            "z": z,
            "mean": mean,
            "std": std,
            "features": int(z["train"].shape[1]),
            "val_accuracy": scores(head.predict(z["val"], verbose=0), y["val"])["accuracy"],
        }
    layer = max(fits, key=lambda k: fits[k]["val_accuracy"])  # chosen on validation, never on test
    best = fits[layer]
    p = {s: best["head"].predict(best["z"][s], verbose=0) for s in split}
    result = {
        "model": Path(model_path).name,
        "layer": layer,
        "features": best["features"],
        "seed": seed,
        "candidates": {
            k: {"features": f["features"], "val_accuracy": round(f["val_accuracy"], 5)} for k, f in fits.items()
        },
        "data": {
            "kind": data.kind,
            "fingerprint": data.fingerprint,
            "split_id": data.split_id,
            "image_size": data.size,
            "encoding": data.encoding,
            **{s: int(len(r)) for s, r in split.items()},
        },
        "epochs_run": len(best["history"]["loss"]),
        "best_epoch": int(np.argmin(best["history"]["val_loss"])) + 1,
        "seconds": round(time.perf_counter() - t0, 1),
        **{f"{s}_{k}": round(v, 5) for s in split for k, v in scores(p[s], y[s]).items()},
        "test_gender_prob": np.round(p["test"].reshape(-1), 4).tolist(),
        "history": best["history"],
    }
    with_gender_head(model, *fold(best["head"], best["mean"], best["std"]), layer).save(
        model_path
    )  # answers gender too
    result["model_sha256"] = file_hash(model_path)
    record = unit_record(model_path)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(result, indent=1) + "\n")
    return result


def ensure_gender(model_path: Path, data: UTKFace, seed: int = 0) -> dict:
    """The gender unit's record for a kept model: read when it belongs to this very file and data, else fitted now."""
    record = unit_record(model_path)
    if record.exists():
        stored = json.loads(record.read_text())
        if stored.get("model_sha256") == file_hash(model_path) and stored["data"]["fingerprint"] == data.fingerprint:
            return stored
    return gender(model_path, data, seed)


GENDER_NETWORK = "gender: separate network"
"""The variant of experiment ``use_model`` that is a second, gender-only network beside the kept age network."""

UNIT, NETWORK = "gender unit", "separate gender network"
"""The two ways the kept model can answer gender, as ``choose_gender`` names them."""


def unit_val_accuracy(unit: dict, model_path: Path | None = None, data: UTKFace | None = None) -> float:
    """The gender unit's validation accuracy: read from its record, or (records that lack it) measured now on the
    validation split through the model's ``female`` output."""
    if "val_accuracy" in unit:
        return float(unit["val_accuracy"])
    if model_path is None or data is None:
        raise ValueError("the unit's record holds no val_accuracy: give the model and the data to measure it")
    model = keras.saving.load_model(model_path, compile=False)
    rows = data.indices("val")
    p = model.predict(data.images[rows], batch_size=256, verbose=0)["female"]
    return float(scores(p, data.table.gender.to_numpy()[rows].astype(np.float32))["accuracy"])


def accuracy_at_kept_epoch(run) -> float | None:
    """A run's validation gender accuracy at the epoch early stopping kept (None when its history lacks it)."""
    key = next((k for k in ("val_gender_accuracy", "val_accuracy") if k in run.history), None)
    return float(run.history[key][run.best_epoch - 1]) if key and run.best_epoch else None


@dataclass(frozen=True)
class GenderChoice:
    """Which model answers gender beside the kept age network, chosen on validation accuracy alone.

    ``candidates``: name -> validation accuracy, test accuracy, test faces, parameters, model file; ``winner``: the
    name kept; ``paths`` and ``prefer``: what ``predict.Predictor(paths, prefer=prefer)`` needs to serve it."""

    candidates: dict[str, dict]
    winner: str
    paths: list[Path]
    prefer: dict[str, int]


def choose_gender(
    unit: dict, model_path: Path, runs: list, network_path: Path | None, data: UTKFace | None = None
) -> GenderChoice:
    """The gender unit of the kept age model (``unit``, its record; ``model_path``) against the separate gender network
    (the run of variant ``GENDER_NETWORK`` among ``runs``, its model ``network_path``): the higher validation accuracy
    (the network's at its kept epoch) wins; a tie keeps the unit, which costs no second forward pass. Without a stored
    network run or model file, the unit is the only candidate. Test figures are carried for reporting, never used."""
    candidates = {
        UNIT: {
            "val_accuracy": unit_val_accuracy(unit, model_path, data),
            "test_accuracy": float(unit["test_accuracy"]),
            "test_faces": int(unit["data"]["test"]),
            "params": int(unit.get("features", 0)) + 1,  # one weight per feature and a bias
            "model": Path(model_path),
            "record": unit_record(model_path),
        }
    }
    net = next((r for r in runs if r.variant == GENDER_NETWORK), None)
    val = accuracy_at_kept_epoch(net) if net is not None else None
    if net is not None and val is not None and network_path is not None and Path(network_path).exists():
        candidates[NETWORK] = {
            "val_accuracy": val,
            "test_accuracy": float(net.metrics["gender_accuracy"]),
            "test_faces": int(net.data.get("test", 0)),
            "params": int(net.params),
            "model": Path(network_path),
            "record": Path(network_path).with_suffix(".json"),
            "kept_epoch": int(net.best_epoch),
            "epochs_run": int(net.epochs_run),
            "hardware": net.hardware,
        }
    winner = max(candidates, key=lambda k: (candidates[k]["val_accuracy"], k == UNIT))  # validation only; tie: unit
    if winner == UNIT:
        return GenderChoice(candidates, winner, [Path(model_path)], {})
    return GenderChoice(candidates, winner, [Path(model_path), Path(network_path)], {"female": 1})


def stored_test_probabilities(choice: GenderChoice) -> np.ndarray:
    """The kept gender model's P(female) on the test faces, as its record stored them when it was scored."""
    record = json.loads(Path(choice.candidates[choice.winner]["record"]).read_text())
    probs = record.get("test_gender_prob") or record.get("predictions", {}).get("gender_prob")
    if probs is None:
        raise ValueError(f"{choice.candidates[choice.winner]['record']}: holds no test P(female)")
    return np.asarray(probs, np.float64)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``gender MODEL``."""
    parser = argparse.ArgumentParser(prog="python -m utils.train.transfer", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("gender", help="fit a gender unit on a kept age model's features and add it to the model")
    p.add_argument("model", type=Path)
    p.add_argument("--profile", default="laptop")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        parser.error(f"{args.model}: no such file")
    from ..base.profiles import resolve
    from ..data import datasets

    data = datasets.for_profile(resolve(args.profile))
    r = gender(args.model, data)
    tried = ", ".join(f"{k} {c['val_accuracy']:.4f}" for k, c in r["candidates"].items())
    print(
        f"{args.model.name}: validation accuracy by layer: {tried}; kept {r['layer']} ({r['features']} features), "
        f"{r['epochs_run']} epochs, {r['seconds']:.0f} s in all; accuracy train {r['train_accuracy']:.4f}, "
        f"val {r['val_accuracy']:.4f}, test {r['test_accuracy']:.4f} ({r['data']['kind']} data)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
