"""The re-encoded copy that travels to a lent GPU machine (utils.data.reencode) and the prepared run (utils.device):
the copy loads as the same data set with close pixels, says how its pixels came, refuses to disagree with its
manifest; the run call fits the tool and names what prepare wrote; the gpu step packs only new records."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from utils import device, gpu_step
from utils.base.files import folder_bytes
from utils.data import ReencodedMismatch, find_image_folder, load_utkface
from utils.data.archive import REENCODED_MANIFEST
from utils.data.reencode import reencode
from utils.data.reencoded import read_reencoded


@pytest.fixture(scope="module")
def copy_of_small(small_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reencoded") / "webp"
    reencode(small_data, out)
    return out


def _load(folder: Path, tmp_path: Path, size: int = 32, synthetic: bool = True):
    return load_utkface(folder, size, synthetic=synthetic, cache_dir=tmp_path / "cache", workers=1, verbose=False)


def test_a_reencoded_copy_loads_as_the_same_data_set_with_close_pixels(small_data, copy_of_small, tmp_path):
    manifest = read_reencoded(copy_of_small)
    assert manifest["count"] == len(small_data.table) and manifest["quality"] == 80
    assert manifest["how"] == "re-encoded WebP q80 from the decoded 32 px faces"
    assert manifest["total_bytes"] == folder_bytes(copy_of_small) - (copy_of_small / REENCODED_MANIFEST).stat().st_size
    assert sorted(p.name for p in copy_of_small.iterdir()) == sorted(
        [REENCODED_MANIFEST, *(f"{f}.webp" for f in small_data.table.file)]
    )
    assert find_image_folder(copy_of_small) == copy_of_small
    copy = _load(copy_of_small, tmp_path)
    assert (copy.fingerprint, copy.split_id, copy.kind) == (small_data.fingerprint, small_data.split_id, "synthetic")
    assert (copy.encoding, small_data.encoding) == ("webp-q80", "jpeg")
    cols = ["file", "age", "gender", "race", "hash", "split"]
    assert copy.table[cols].equals(small_data.table[cols])
    diff = np.abs(copy.images.astype(np.int16) - small_data.images.astype(np.int16)).mean(axis=(1, 2, 3))
    assert diff.mean() < 6 and diff.max() < 12, (diff.mean(), diff.max())  # q80 at 32 px: ~4 grey levels
    assert copy.report.loaded == copy.report.files == len(small_data.table) and not copy.report.skipped
    assert "re-encoded WebP q80" in str(copy.report) and f"{small_data.report.files:,} files there" in str(copy.report)
    again = _load(copy_of_small, tmp_path)  # from its cache, which no original folder shares
    assert again.report.from_cache and Path(again.report.cache).parent != Path(small_data.report.cache).parent


def _break_missing(folder: Path) -> None:
    next(folder.glob("*.webp")).unlink()


def _break_extra(folder: Path) -> None:
    (folder / "notes.txt").write_text("hello")


def _break_changed(folder: Path) -> None:
    path = next(folder.glob("*.webp"))
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")


def _break_manifest(folder: Path) -> None:
    (folder / REENCODED_MANIFEST).write_bytes(b"{not gzip")


@pytest.mark.parametrize(
    "damage, message",
    [
        (_break_missing, "1 listed but missing"),
        (_break_extra, r"1 present but not listed \(e.g. notes.txt\)"),
        (_break_changed, "1 changed or unreadable"),
        (_break_manifest, "cannot be read"),
    ],
)
def test_a_copy_that_disagrees_with_its_manifest_is_refused(copy_of_small, tmp_path, damage, message):
    folder = tmp_path / "webp"
    shutil.copytree(copy_of_small, folder)
    damage(folder)
    with pytest.raises(ReencodedMismatch, match=message) as err:
        _load(folder, tmp_path)
    assert "python -m utils.data.reencode --out" in str(err.value)


def test_a_copy_loads_only_as_it_was_written(copy_of_small, small_data, tmp_path):
    with pytest.raises(ValueError, match="re-encoded at 32 px"):
        _load(copy_of_small, tmp_path, size=48)
    with pytest.raises(ReencodedMismatch, match="synthetic faces: load it with synthetic=True"):
        _load(copy_of_small, tmp_path, synthetic=False)
    copy = _load(copy_of_small, tmp_path)
    with pytest.raises(ValueError, match="already re-encoded"):
        reencode(copy, tmp_path / "twice")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(ValueError, match="not a re-encoded copy"):
        reencode(small_data, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").exists()
    shutil.copytree(copy_of_small, tmp_path / "again")
    assert reencode(small_data, tmp_path / "again", quality=60)["encoding"] == "webp-q60"  # an earlier copy: replaced
    assert read_reencoded(tmp_path / "again")["quality"] == 60 and not list(tmp_path.glob(".again.*"))


def test_records_say_how_their_pixels_came_and_older_ones_read_as_jpeg(small_data):
    from utils.base.profiles import PROFILES
    from utils.train.callbacks import run_key
    from utils.train.runs import Run

    record = {
        "config": {},
        "seed": 0,
        "profile": {},
        "data": {"kind": "real", "fingerprint": "fp", "split_id": "s"},
        "metrics": {"loss": 1.0},
        "history": {},
        "predictions": {},
    }
    assert Run.from_dict(record).encoding == "jpeg"
    record["data"]["encoding"] = "webp-q80"
    run = Run.from_dict(record)
    assert run.encoding == "webp-q80" and run.to_dict()["data"]["encoding"] == "webp-q80"
    full = PROFILES["full"]
    webp = dataclasses.replace(small_data, encoding="webp-q80")
    assert run_key(run.config, full, 0, webp) != run_key(run.config, full, 0, small_data)


# ----------------------------------------------------------------------------------------- the prepared run


def _fake_wheel(folder: Path, name: str, version: str, needs: list[str]) -> None:
    meta = "\n".join([f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {n}" for n in needs)])
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as zf:
        zf.writestr(f"{name}-{version}.dist-info/METADATA", meta)


@pytest.fixture
def fake_repo(tmp_path, monkeypatch, small_data):
    import subprocess

    root = tmp_path / "repo"
    (root / "utils").mkdir(parents=True)
    (root / "utils" / "a.py").write_text("x = 1\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "utils/a.py"], check=True)
    monkeypatch.setattr(device, "REPO_ROOT", root)
    versions = {"keras": "3.9.9", "namex": "0.1.0", "optree": "0.9.9"}
    monkeypatch.setattr("importlib.metadata.version", lambda p: versions[p])
    needs = {"keras": ["absl-py", "numpy", "rich", "namex", "h5py", "optree", "ml-dtypes", "packaging"]}
    needs["optree"] = ["typing-extensions>=4.6.0", "pytest; extra == 'test'"]

    def download(pins: list[str], folder: Path) -> None:
        for pin in pins:
            name, version = pin.split("==")
            _fake_wheel(folder, name, version, needs.get(name, []))

    monkeypatch.setattr(device, "_pip_download", download)
    return root, needs


def test_prepare_writes_what_the_call_carries_and_the_call_fits(fake_repo, small_data, capsys):
    root, _needs = fake_repo
    stale = root / ".carry" / "whl"
    stale.mkdir(parents=True)
    _fake_wheel(stale, "keras", "3.0.0", [])  # an older version left there: removed (two stop the install)
    call = device.prepare(data=small_data)
    assert set(call) == {"command", "carry", "timeout_s"} and call["timeout_s"] <= 600
    assert len(call["command"]) <= 2000 and call["command"].startswith("python3 -m pip install")
    assert '--out "$OUT"' in call["command"] and "utils.device gpu" in call["command"]
    assert call["carry"] == [".carry/utkface-128-webp", ".carry/whl"] and len(call["carry"]) <= 8
    assert all((root / p).is_dir() and any((root / p).iterdir()) for p in call["carry"])
    assert sorted(p.name for p in (root / ".carry" / "whl").iterdir()) == [
        "keras-3.9.9-py3-none-any.whl",
        "namex-0.1.0-py3-none-any.whl",
        "optree-0.9.9-py3-none-any.whl",
    ]
    assert "/.carry/" in (root / ".git" / "info" / "exclude").read_text().split()
    manifest = read_reencoded(root / gpu_step.DATA)
    assert manifest["fingerprint"] == small_data.fingerprint
    out = capsys.readouterr().out
    assert "travels: working tree" in out and "keras-3.9.9" in out
    before = (root / gpu_step.DATA / REENCODED_MANIFEST).stat().st_mtime_ns
    device.prepare(data=small_data)  # the copy is reused, the exclude line not doubled
    assert (root / gpu_step.DATA / REENCODED_MANIFEST).stat().st_mtime_ns == before
    assert (root / ".git" / "info" / "exclude").read_text().split().count("/.carry/") == 1


def test_prepare_refuses_a_wheel_the_device_cannot_satisfy_and_too_much_to_carry(fake_repo, small_data, monkeypatch):
    _root, needs = fake_repo
    needs["namex"] = ["tensorflow>=2.16"]
    with pytest.raises(RuntimeError, match="tensorflow"):
        device.prepare(data=small_data)
    needs["namex"] = []
    monkeypatch.setattr(device, "TRAVEL_LIMIT", 1000)
    with pytest.raises(RuntimeError, match="lower --quality"):
        device.prepare(data=small_data)


def test_the_real_call_fits_the_tool():
    call = device.run_call()
    assert len(call["command"]) <= 2000 and call["timeout_s"] == 600
    assert gpu_step.SECONDS + 45 <= call["timeout_s"]  # room for the wheels before and the packing after


FAKE_QUEUE = r"""
import os, sys, time
from pathlib import Path
args = sys.argv[1:]
print("fake queue", " ".join(args), "backend", os.environ["KERAS_BACKEND"], "data", os.environ["UTKFACE_DIR"])
if os.environ.get("FAKE_HANG") and args[-1] != "0.0003":
    time.sleep(60)
if args[-1] != "0.0003":
    new = Path(os.environ["FAKE_RESULTS"]) / "full-real-abc" / "new-seed1.json"
    new.parent.mkdir(parents=True, exist_ok=True)
    new.write_text('{"seed": 1}')
"""


@pytest.mark.parametrize("hang", [False, True])
def test_the_gpu_step_trains_then_packs_only_new_records(tmp_path, monkeypatch, hang):
    pytest.importorskip("jax")
    results = tmp_path / "results"
    (results / "full-real-abc").mkdir(parents=True)
    (results / "full-real-abc" / "old-seed0.json").write_text('{"seed": 0}')
    script = tmp_path / "queue.py"
    script.write_text(FAKE_QUEUE)
    monkeypatch.setattr(gpu_step, "RESULTS_DIR", results)
    monkeypatch.setattr(gpu_step, "PER_RUN_S", 0)
    monkeypatch.setenv("FAKE_RESULTS", str(results))
    if hang:
        monkeypatch.setenv("FAKE_HANG", "1")
    out = tmp_path / "out"
    t0 = time.time()
    rc = gpu_step.gpu(out, seconds=10, allow_cpu=True, queue=[sys.executable, str(script)])
    assert time.time() - t0 < 60
    log = (out / "queue.log").read_text()
    assert "== backend: cpu" in log and "--stages a b --hours 0.0003" in log and "backend jax" in log
    assert "packed" in log and ("== out of time" in log) == hang
    with tarfile.open(out / gpu_step.TARBALL) as tf:
        names = tf.getnames()
    if hang:
        assert rc == 124 and names == []
    else:
        assert rc == 0 and names == ["results/full-real-abc/new-seed1.json"]
    assert gpu_step.gpu(tmp_path / "out2", seconds=10) == 3  # no GPU here: nothing trains


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_unpack_pools_new_records_lists_them_and_never_overwrites(tmp_path, capsys):
    """The tar's records go through ``pool``: filed by their own profile and data, a stored seed never replaced, every
    member refused or passed over named by its path inside the tar."""
    from tests.records import record
    from utils.nets.models import ARTICLE
    from utils.train.runs import Run
    from utils.train.store import file_name, folder_name

    def gpu_record(seed: int, loss: float = 0.5) -> dict:
        extra = {"experiment": "augmentation", "variant": "with augmentation", "versions": {"backend": "jax"}}
        extra |= {"device": "GPU NVIDIA H100 80GB HBM3", "precision": "mixed_float16", "epochs_run": 40}
        rec = record(seed, loss) | extra
        rec["data"] |= {"encoding": "webp-q80"}
        return rec

    results = tmp_path / "results"
    home = folder_name(Run.from_dict(gpu_record(0)))
    (results / home).mkdir(parents=True)
    (results / home / file_name(ARTICLE, 0)).write_text(json.dumps(gpu_record(0)))
    (results / home / file_name(ARTICLE, 1)).write_text(json.dumps(gpu_record(1)))
    tar = _tar(
        tmp_path / "runs.tar.gz",
        {
            f"results/{home}/{file_name(ARTICLE, 2)}": json.dumps(gpu_record(2)).encode(),
            f"results/{home}/{file_name(ARTICLE, 0)}": json.dumps(gpu_record(0)).encode(),  # the same run
            f"results/{home}/{file_name(ARTICLE, 1)}": json.dumps(gpu_record(1, loss=0.9)).encode(),  # another
            "results/elsewhere/misfiled.json": json.dumps(gpu_record(3)).encode(),  # filed where its record says
            "results/notes.txt": b"hello",
            "results/../escape.json": b"{}",
            "elsewhere/x.json": b"{}",
        },
    )
    landed = device.unpack(tar, results)
    assert sorted(landed) == [results / home / file_name(ARTICLE, 2), results / home / file_name(ARTICLE, 3)]
    assert json.loads((results / home / file_name(ARTICLE, 1)).read_text())["metrics"]["loss"] == 0.5
    assert not (tmp_path / "escape.json").exists() and not (tmp_path / "elsewhere").exists()
    assert not (results / "elsewhere").exists()
    out = capsys.readouterr().out
    assert "jax on GPU NVIDIA H100 80GB HBM3, mixed_float16, pixels webp-q80, 40 epochs" in out
    assert "added 2 file(s); 1 already stored (identical)" in out
    assert f"another run of that seed is stored ({file_name(ARTICLE, 1)})" in out
    assert f"    results/{home}/{file_name(ARTICLE, 1)}" in out  # named by its path in the tar, not a temporary one
    assert "not a run record (.json)" in out and "results/notes.txt" in out
    assert out.count("refused:") == 2
