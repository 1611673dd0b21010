"""How a kept model behaves outside its test table: the interval it gives, what the face detector costs, its speed.

Each function measures on the data it is given (real or synthetic: the caller labels it) and returns plain tables.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..base import labels
from ..base.labels import age_interval
from ..base.paths import REPO_ROOT
from ..base.stats import bootstrap_interval
from ..data import UTKFace
from .faces import detect_faces, utk_crop
from .photos import read_image
from .predict import Predictor


def interval_hits(
    above: np.ndarray, true: np.ndarray, coverage: float | None, min_age: int
) -> tuple[float, float, float]:
    """Each face's central ``coverage`` interval from its P(age > k) row: the share that holds the true age, the mean
    probability the model put inside, and the median width in years."""
    lo, hi, mass = np.array([age_interval(a, coverage, min_age) for a in np.asarray(above)]).T
    true = np.asarray(true)
    return float(np.mean((true >= lo) & (true <= hi))), float(np.mean(mass)), float(np.median(hi - lo + 1))


def interval_coverage(
    predictor: Predictor,
    data: UTKFace,
    split: str = "test",
    coverage: float | None = None,
    stored_female: np.ndarray | None = None,
) -> dict[str, float]:
    """On the direct path (the loader's own crops): MAE; and how often the interval (``labels.INTERVAL`` unless
    ``coverage``) holds the true age, beside the probability the model itself put inside it, and its median width.
    With ``stored_female`` (P(female) per face of ``split`` as a run's record stored it): that record's accuracy, how
    many faces the served model puts on the other side of 0.5, and how far from 0.5 the record had them."""
    rows = data.indices(split)
    out = predictor.outputs_at_size(data.images[rows])
    true = data.table.age.to_numpy()[rows]
    result = {"faces": int(len(rows)), "age_mae_years": float(np.mean(np.abs(out["age"].reshape(-1) - true)))}
    if "age_above" in out:
        held, claimed, width = interval_hits(out["age_above"], true, coverage, int(out["min_age"]))
        result.update(
            nominal=float(coverage if coverage is not None else labels.INTERVAL),
            coverage=held,
            claimed=claimed,
            median_width=width,
        )
    if "female" in out:
        gender = data.table.gender.to_numpy()[rows]
        served = out["female"].reshape(-1)
        result["gender_accuracy"] = float(np.mean((served > 0.5) == gender))
        if stored_female is not None:
            stored = np.asarray(stored_female, np.float64).reshape(-1)
            if stored.shape != served.shape:
                raise ValueError(f"stored_female has {stored.size} values for {served.size} {split} faces")
            moved = (stored > 0.5) != (served > 0.5)
            result.update(
                stored_gender_accuracy=float(np.mean((stored > 0.5) == gender)),
                gender_changed_side=int(moved.sum()),
                changed_farthest=float(np.max(np.abs(stored[moved] - 0.5))) if moved.any() else 0.0,
            )
    return result


def pad_photo(image: np.ndarray, pad: float) -> np.ndarray:
    """A tight face crop with ``pad`` of its side added on every side (edge pixels repeated):
    a face with surroundings."""
    if pad <= 0:
        return image
    py, px = int(round(pad * image.shape[0])), int(round(pad * image.shape[1]))
    return np.pad(image, ((py, py), (px, px), (0, 0)), mode="edge")


def detector_path(
    predictor: Predictor,
    data: UTKFace,
    n: int = 500,
    pads: tuple[float, ...] = (0.0, 0.25),
    seed: int = 0,
    split: str = "test",
) -> pd.DataFrame:
    """For ``n`` faces of ``split`` (a fixed sample), the direct answer and the answer through detector and crop.

    One row per face and padding: detected (0 when no face was found), ages and P(female) of both paths.
    """
    rows = data.indices(split)
    rows = np.sort(np.random.default_rng(seed).choice(rows, size=min(n, len(rows)), replace=False))
    direct = predictor.outputs_at_size(data.images[rows])
    folder = Path(data.report.folder)
    records = []
    for pad in pads:
        crops, where = [], []
        for i, row in enumerate(rows):
            photo = pad_photo(read_image(folder / data.table.file.iat[row]), pad)
            boxes = detect_faces(photo)
            if boxes:  # several boxes: the largest is the face the crop was made for
                box = max(boxes, key=lambda b: b.w)
                crops.append(utk_crop(photo, box))
                where.append(i)
            records.append({"pad": pad, "row": int(row), "faces_found": len(boxes)})
        found = predictor.outputs(crops) if crops else {}
        block = records[-len(rows) :]
        for j, i in enumerate(where):
            block[i]["age_detector"] = float(found["age"][j].reshape(-1)[0]) if "age" in found else np.nan
            block[i]["female_detector"] = float(found["female"][j].reshape(-1)[0]) if "female" in found else np.nan
    frame = pd.DataFrame(records)
    index = {int(r): k for k, r in enumerate(rows)}
    k = frame.row.map(index).to_numpy()
    frame["age_true"] = data.table.age.to_numpy()[frame.row]
    frame["gender_true"] = data.table.gender.to_numpy()[frame.row]
    frame["age_direct"] = direct["age"].reshape(-1)[k] if "age" in direct else np.nan
    frame["female_direct"] = direct["female"].reshape(-1)[k] if "female" in direct else np.nan
    for col in ("age_detector", "female_detector"):
        if col not in frame:
            frame[col] = np.nan
    return frame


def detector_summary(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per padding (a share of the side): detection rate, and on the faces detected in that row the MAE and gender
    accuracy of both paths, with the paired changes and their bootstrap 95 % intervals over faces (``_lo``, ``_hi``).
    Plain numbers under plain names; ``model_notes.detector_table`` labels them for a reader."""
    out = []
    for pad, g in frame.groupby("pad"):
        d = g[g.faces_found > 0]
        row = {
            "pad": float(pad),
            "faces": len(g),
            "detected": len(d) / len(g),
            "several_boxes": int((g.faces_found > 1).sum()),
        }
        if len(d):
            e_direct, e_det = (d.age_direct - d.age_true).abs(), (d.age_detector - d.age_true).abs()
            change = (e_det - e_direct).to_numpy()
            lo, hi = bootstrap_interval(change, seed=seed)
            row.update(
                mae_direct=e_direct.mean(), mae_detector=e_det.mean(), change=change.mean(), change_lo=lo, change_hi=hi
            )
            if d.female_direct.notna().all():
                right_direct = ((d.female_direct > 0.5) == d.gender_true).to_numpy(float)
                right_det = ((d.female_detector > 0.5) == d.gender_true).to_numpy(float)
                glo, ghi = bootstrap_interval(right_det - right_direct, seed=seed)
                row.update(
                    gender_direct=right_direct.mean(),
                    gender_detector=right_det.mean(),
                    gender_change=(right_det - right_direct).mean(),
                    gender_change_lo=glo,
                    gender_change_hi=ghi,
                )
        out.append(row)
    return pd.DataFrame(out)


def speed(predictor: Predictor, photo: np.ndarray | Path, repeats: int = 5) -> dict[str, float]:
    """Seconds per call of detect + crop + predict on one photo (after one warm-up call), and photos per second."""
    predictor.predict(photo)
    t0 = time.perf_counter()
    for _ in range(repeats):
        faces = predictor.predict(photo)
    per_photo = (time.perf_counter() - t0) / repeats
    image = read_image(photo)
    t0 = time.perf_counter()
    for _ in range(repeats):
        detect_faces(image)
    detect = (time.perf_counter() - t0) / repeats
    return {
        "photo_px": f"{image.shape[1]}x{image.shape[0]}",
        "faces": len(faces),
        "seconds_per_photo": round(per_photo, 3),
        "of_which_detection": round(detect, 3),
        "photos_per_second": round(1 / per_photo, 1),
    }


def cli_startup(photo: Path, model: Path | None = None) -> dict[str, float]:
    """Wall seconds of the command line: ``--help`` (start-up), and one photo (start-up, model load, answer)."""

    def timed(*args: str) -> float:
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "utils.use.predict", *args], capture_output=True, text=True, cwd=REPO_ROOT
        )
        if done.returncode != 0:
            raise RuntimeError(f"python -m utils.use.predict {' '.join(args)} failed: {done.stderr[-500:]}")
        return round(time.perf_counter() - t0, 2)

    extra = ["--model", str(model)] if model else []
    return {"help_s": timed("--help"), "photo_s": timed(str(photo), *extra)}
