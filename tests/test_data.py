import json
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from utils import data as D
from utils.data import archive as A
from utils.data import cli as CLI
from utils.data import decode as DEC
from utils.data import load as LOAD
from utils.data.synthetic import make_synthetic

from .conftest import REAL_ARCHIVE


def load(src, tmp_path, **kw):
    kw.setdefault("cache_dir", tmp_path / "cache")
    kw.setdefault("split_file", tmp_path / "split.csv")
    return D.load_utkface(src, 32, workers=1, verbose=False, **kw)


def test_every_file_is_accounted_for(small_data):
    r = small_data.report
    assert r.loaded + sum(r.skipped.values()) == r.files == 128
    assert r.skipped == {
        "duplicate image, same labels": 1,  # more cases in test_duplicate_groups_report_what_happened
        "duplicate image, conflicting labels": 2,
        "corrupt or unreadable image": 1,
        "unreadable name: name does not follow age_gender_race_timestamp": 1,
        "not a .jpg file": 1,
    }
    assert r.converted == {"L": 1, "CMYK": 1}
    assert r.duplicate_groups == 2
    assert r.duplicates == {"one copy kept": 1, "all dropped (labels conflict)": 1}
    assert small_data.images.shape == (r.loaded, 32, 32, 3) and small_data.images.dtype == np.uint8
    assert (small_data.table.race == -1).sum() == 1  # the file without a race field still loads


def test_json_summary_has_the_documented_keys(small_data):
    summary = json.loads(small_data.report.as_json())
    assert set(summary) == {"files", "loaded", "skipped", "duplicate_groups", "split", "cache", "seconds"}
    assert sum(summary["split"].values()) == summary["loaded"]


def test_split_is_deterministic_stratified_and_duplicate_safe(small_data):
    t = small_data.table
    again = D.make_split(t.drop(columns="split"), seed=0)
    assert (again.to_numpy() == t.split.to_numpy()).all()
    assert set(t.split) == {"train", "val", "test"}
    assert abs((t.split == "train").mean() - 0.7) < 0.1
    # no image content in two splits
    assert t.groupby("hash").split.nunique().max() == 1
    # copies with the same labels are kept together when they are not removed
    doubled = pd.concat([t, t.assign(file=t.file + "_copy")]).drop(columns="split")
    split = D.make_split(doubled, seed=3)
    assert doubled.assign(split=split).groupby("hash").split.nunique().max() == 1


def test_cache_is_reused_and_fast(synthetic_folder, tmp_path):
    first = load(synthetic_folder, tmp_path)
    second = load(synthetic_folder, tmp_path)
    assert not first.report.from_cache and second.report.from_cache
    assert np.array_equal(np.asarray(first.images), np.asarray(second.images))
    assert second.report.seconds < 2
    assert first.split_id == second.split_id and first.fingerprint == second.fingerprint


def test_archives_and_nested_layouts(synthetic_folder, tmp_path):
    nested = tmp_path / "kaggle" / "utkface_aligned_cropped" / "UTKFace"
    shutil.copytree(synthetic_folder, nested)
    (tmp_path / "kaggle" / "crop_part1").mkdir()
    shutil.copy(next(synthetic_folder.glob("*.chip.jpg")), tmp_path / "kaggle" / "crop_part1")
    assert D.locate(tmp_path / "kaggle") == nested
    tgz = tmp_path / "UTKFace.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(synthetic_folder, arcname="UTKFace")
    zp = tmp_path / "UTKFace.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        for p in synthetic_folder.iterdir():
            zf.write(p, f"utkface_aligned_cropped/UTKFace/{p.name}")
    out_t, out_z = tmp_path / "out_t", tmp_path / "out_z"
    a = D.locate(tgz, extract_to=out_t)
    b = D.locate(zp, extract_to=out_z)
    assert len(list(a.iterdir())) == len(list(b.iterdir())) == len(list(synthetic_folder.iterdir()))
    mtime = a.stat().st_mtime_ns
    assert D.locate(tgz, extract_to=out_t) == a and a.stat().st_mtime_ns == mtime  # extracted once


def test_archive_members_escaping_the_target_are_refused(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    src = tmp_path / "x.jpg"
    src.write_bytes(b"x")
    with tarfile.open(bad, "w:gz") as tf:
        tf.add(src, arcname="../../escaped.jpg")
    with pytest.raises(ValueError, match="outside"):
        D.extract_archive(bad, tmp_path / "dest")
    assert not (tmp_path / "escaped.jpg").exists()


def test_missing_dataset_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("UTKFACE_DIR", raising=False)
    with pytest.raises(D.DatasetNotFound, match="Kaggle"):
        D.locate(extract_to=tmp_path / "empty")
    with pytest.raises(D.DatasetNotFound, match="neither a folder"):
        D.locate(tmp_path / "nope.txt")
    (tmp_path / "no_images").mkdir()
    with pytest.raises(D.DatasetNotFound, match="no .jpg images"):
        D.locate(tmp_path / "no_images")


def test_environment_variable_is_used(synthetic_folder, monkeypatch):
    monkeypatch.setenv("UTKFACE_DIR", str(synthetic_folder))
    assert D.locate() == synthetic_folder


def test_corrupt_image_is_skipped_not_fatal(tmp_path):
    folder = tmp_path / "UTKFace"
    folder.mkdir()
    from utils.data.synthetic import draw_face

    rng = np.random.default_rng(0)
    for i in range(12):
        draw_face(20 + i, i % 2, 0, rng).save(folder / f"{20 + i}_{i % 2}_0_2017010100000{i:04d}.jpg.chip.jpg")
    (folder / "30_0_0_20170101999999999.jpg.chip.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    ds = load(folder, tmp_path)
    assert ds.report.loaded == 12
    assert ds.report.skipped == {"corrupt or unreadable image": 1}


def test_bad_size_is_rejected(synthetic_folder):
    with pytest.raises(ValueError, match="size"):
        D.load_utkface(synthetic_folder, 3)


def test_synthetic_generator_is_seeded_and_depends_on_labels(tmp_path):
    a = make_synthetic(20, seed=5, root=tmp_path / "a", irregular=False)
    b = make_synthetic(20, seed=5, root=tmp_path / "b", irregular=False)
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    assert all((a / p.name).read_bytes() == p.read_bytes() for p in b.iterdir())
    from utils.data.synthetic import draw_face

    rng = np.random.default_rng(0)
    young = np.mean([np.asarray(draw_face(5, 1, 0, rng), float) for _ in range(5)], axis=0)
    old = np.mean([np.asarray(draw_face(80, 1, 0, rng), float) for _ in range(5)], axis=0)
    assert np.abs(young - old).mean() > 5  # age changes the picture


def test_cli_prints_summary_and_json(synthetic_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(LOAD, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(LOAD, "SPLITS_DIR", tmp_path / "splits")
    assert D.main(["--source", str(synthetic_folder), "--size", "16", "--workers", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "files seen" in "\n".join(out)
    assert json.loads(out[-1])["files"] == 128
    assert D.main(["--source", str(tmp_path / "missing")]) == 2


@pytest.mark.skipif(not REAL_ARCHIVE.exists(), reason="the real UTKFace archive is not present")
def test_real_archive_accounts_for_all_23708_files(tmp_path):
    ds = D.load_utkface(REAL_ARCHIVE, 16, extract_to=tmp_path / "x", cache_dir=tmp_path / "c", verbose=False)
    r = ds.report
    assert r.files == 23708
    assert r.loaded + sum(r.skipped.values()) == 23708
    assert r.duplicate_groups == 375
    assert r.duplicates == {
        "all dropped (labels conflict)": 224,
        "one copy kept": 116,
        "one copy kept, race differs": 35,
    }
    assert r.skipped == {
        "duplicate image, conflicting labels": 458,
        "duplicate image, same labels": 118,
        "duplicate image, same age and gender, race differs": 38,
    }
    assert r.loaded == 23094
    assert ds.table.groupby("hash").split.nunique().max() == 1
    committed = LOAD.SPLITS_DIR / "utkface.csv"
    assert committed.exists() and set(pd.read_csv(committed).file) == set(ds.table.file)


def test_kaggle_download_without_client_or_network_explains(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_kaggle(name, *a, **kw):
        if name == "kaggle":
            raise ImportError("No module named 'kaggle'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_kaggle)
    with pytest.raises(D.DatasetNotFound, match="pip install kaggle"):
        D.download_kaggle(tmp_path)


def test_colab_prepare_finds_data_or_explains(synthetic_folder, tmp_path, monkeypatch, capsys):
    from utils import colab

    monkeypatch.setenv("UTKFACE_DIR", str(synthetic_folder))
    assert colab.prepare() == str(synthetic_folder)
    monkeypatch.delenv("UTKFACE_DIR")
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setattr(A, "DATA_DIR", tmp_path / "nothing")
    monkeypatch.setattr(colab, "DRIVE_CANDIDATES", (str(tmp_path / "no-drive"),))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert colab.prepare() is None
    assert "synthetic faces" in capsys.readouterr().out


def test_a_split_file_that_misses_loaded_files_is_not_used(synthetic_folder, tmp_path):
    split = tmp_path / "split.csv"
    pd.DataFrame({"file": ["someone_else.jpg"], "split": ["train"]}).to_csv(split, index=False)
    ds = load(synthetic_folder, tmp_path, split_file=split)
    own = Path(ds.report.cache).parent / f"split-{ds.fingerprint}.csv"  # in the git-ignored cache, not beside it
    assert own.exists() and set(pd.read_csv(own).file) == set(ds.table.file)
    assert not (tmp_path / f"split-{ds.fingerprint}.csv").exists()
    assert ds.table.split.notna().all()
    assert load(synthetic_folder, tmp_path, split_file=split).split_id == ds.split_id


def test_paths_are_shown_relative_to_the_repository_or_home():
    from pathlib import Path

    from utils.base.paths import REPO_ROOT, shown

    assert shown(REPO_ROOT / "data" / "UTKFace") == "data/UTKFace"
    assert shown(Path.home() / "datasets" / "UTKFace") in (
        "~/datasets/UTKFace",
        str(Path.home() / "datasets" / "UTKFace"),
    )
    assert shown("synthetic faces (n=120)") == "synthetic faces (n=120)"
    assert shown("/elsewhere/UTKFace.tar.gz") == "/elsewhere/UTKFace.tar.gz"


# ------------------------------------------------------------------ issue #13: what the loader promises, held by tests

ROOT = Path(__file__).resolve().parents[1]


def copy_of(folder: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "copy" / "UTKFace"
    shutil.copytree(folder, dest)
    return dest


def cli(folder: Path, cache_dir: Path, *extra: str, delay: float = 0.0, log: Path | None = None):
    """Start `python -m utils.data` on ``folder`` as a real process (stderr to ``log``)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, DEC.DELAY_ENV: str(delay), "PYTHONPATH": str(ROOT)}
    args = [
        sys.executable,
        "-m",
        "utils.data",
        "--source",
        str(folder),
        "--size",
        "32",
        "--cache-dir",
        str(cache_dir),
        *extra,
    ]
    err = open(log, "w") if log else subprocess.DEVNULL
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True)


def wait_for(condition, timeout: float = 30.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return False


def tmp_files(cache_dir: Path) -> list[Path]:
    return [p for p in cache_dir.rglob("*") if p.name.endswith(".tmp")]


def test_a_killed_racing_loader_does_not_poison_the_cache(synthetic_folder, tmp_path):
    """#13.1: a second loader killed -9 while the first decodes; the first still writes a sound cache."""
    cache_dir = tmp_path / "cache"
    first = cli(synthetic_folder, cache_dir, "--workers", "1", delay=2.5)
    assert wait_for(lambda: tmp_files(cache_dir)), "the first loader never started decoding"
    log = tmp_path / "second.log"
    second = cli(synthetic_folder, cache_dir, "--workers", "1", log=log)
    wait_for(lambda: "waiting for another process" in log.read_text(), timeout=20)
    second.kill()
    second.wait()
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 0
    reused = load(synthetic_folder, tmp_path, cache_dir=cache_dir)
    clean = load(synthetic_folder, tmp_path, cache_dir=tmp_path / "clean")
    assert reused.report.from_cache and np.array_equal(np.asarray(reused.images), np.asarray(clean.images))
    assert json.loads(out.splitlines()[-1])["cache"] == reused.report.cache
    assert not tmp_files(cache_dir)


def test_racing_loaders_both_finish_with_one_cache(synthetic_folder, tmp_path):
    """#13.1: two loaders started together both succeed (no crash at os.replace) and agree."""
    cache_dir = tmp_path / "cache"
    procs = [cli(synthetic_folder, cache_dir, "--workers", "1", delay=0.5) for _ in range(2)]
    outs = [json.loads(p.communicate(timeout=60)[0].splitlines()[-1]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and outs[0] == {**outs[1], "seconds": outs[0]["seconds"]}
    assert load(synthetic_folder, tmp_path, cache_dir=cache_dir).report.from_cache


def test_a_killed_writer_leaves_nothing_that_is_trusted(synthetic_folder, tmp_path):
    """#13.1: kill -9 the only loader while it decodes: the next load rebuilds and removes the dead one's files."""
    cache_dir = tmp_path / "cache"
    proc = cli(synthetic_folder, cache_dir, "--workers", "1", delay=30)
    assert wait_for(lambda: tmp_files(cache_dir))
    proc.kill()
    proc.wait()
    ds = load(synthetic_folder, tmp_path, cache_dir=cache_dir)
    assert not ds.report.from_cache and not tmp_files(cache_dir)
    assert np.asarray(ds.images).reshape(len(ds.images), -1).max(axis=1).min() > 0  # no black (unwritten) faces


def test_changed_pixels_of_the_same_size_are_noticed(synthetic_folder, tmp_path):
    """#13.2: a face replaced by another of the same byte size (even with its old mtime) is decoded again."""
    import os

    from utils.data.synthetic import draw_face

    folder = copy_of(synthetic_folder, tmp_path)
    before = load(folder, tmp_path)
    victim = folder / before.table.file.iloc[0]
    old, st = victim.read_bytes(), victim.stat()
    other = tmp_path / "other.jpg"
    draw_face(70, 0, 1, np.random.default_rng(9)).save(other, quality=25)
    new = other.read_bytes()
    assert len(new) < len(old)
    victim.write_bytes(new + b"\0" * (len(old) - len(new)))  # JPEG readers ignore bytes after the end marker
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))  # same name, size and mtime: only ctime moved
    after = load(folder, tmp_path)
    assert not after.report.from_cache
    assert after.table.hash.iloc[0] != before.table.hash.iloc[0] and after.fingerprint != before.fingerprint
    assert not np.array_equal(np.asarray(after.images[0]), np.asarray(before.images[0]))
    assert np.array_equal(np.asarray(after.images[1:]), np.asarray(before.images[1:]))


def test_touched_files_are_hashed_again_but_the_decoded_cache_is_kept(synthetic_folder, tmp_path):
    """#13.2: a changed mtime alone costs a re-hash, not a re-decode."""
    import os

    folder = copy_of(synthetic_folder, tmp_path)
    first = load(folder, tmp_path)
    for p in list(folder.iterdir())[:5]:
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    again = load(folder, tmp_path)
    assert again.report.from_cache and again.fingerprint == first.fingerprint
    assert len(list((tmp_path / "cache" / "index").iterdir())) == 2  # both stat keys point to the same content


@pytest.mark.parametrize("damage", ["truncate", "zero rows", "drop record", "truncate manifest"])
def test_a_damaged_cache_is_detected_and_rebuilt(synthetic_folder, tmp_path, capsys, damage):
    """#13.3: a truncated or altered cache is named in a warning and rebuilt, not trusted or fatal."""
    first = load(synthetic_folder, tmp_path)
    npy = Path(first.report.cache)
    pixels = np.array(first.images)
    del first
    if damage == "truncate":
        with open(npy, "r+b") as f:
            f.truncate(npy.stat().st_size // 2)
    elif damage == "zero rows":
        arr = np.load(npy, mmap_mode="r+")
        arr[len(arr) // 3 : len(arr) // 2] = 0
        arr.flush()
        del arr
    elif damage == "drop record":
        npy.with_suffix(".json").unlink()
    else:
        manifest = npy.parent / "files.csv"
        manifest.write_text(manifest.read_text()[:200])
    capsys.readouterr()
    ds = load(synthetic_folder, tmp_path)
    err = capsys.readouterr().err
    if damage in ("truncate", "zero rows"):
        assert f"{npy}" in err and "rebuilding" in err
    assert not ds.report.from_cache or damage == "truncate manifest"
    assert np.array_equal(np.asarray(ds.images), pixels)
    assert load(synthetic_folder, tmp_path).report.from_cache


def test_an_incomplete_archive_says_download_it_again(synthetic_folder, tmp_path, monkeypatch, capsys):
    """#13.5: truncated or non-gzip archives: a clear error naming the file; `auto` falls back to synthetic,
    saying why."""
    from utils.data.datasets import resolve_profile as resolve

    tgz = tmp_path / "UTKFace.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(synthetic_folder, arcname="UTKFace")
    broken = {"truncated": tgz.read_bytes()[: tgz.stat().st_size // 2], "not gzip": b"<html>Sign in to continue</html>"}
    zp = tmp_path / "full.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        for p in synthetic_folder.iterdir():
            zf.write(p, f"UTKFace/{p.name}")
    broken["truncated zip"] = zp.read_bytes()[: zp.stat().st_size // 2]
    for what, content in broken.items():
        bad = tmp_path / what.replace(" ", "_") / ("utkface-new.zip" if "zip" in what else "UTKFace.tar.gz")
        bad.parent.mkdir()
        bad.write_bytes(content)
        out = tmp_path / f"out-{what}"
        with pytest.raises(D.IncompleteArchive, match=rf"incomplete archive {bad}: download it again"):
            D.locate(bad, extract_to=out)
        assert isinstance(D.IncompleteArchive("x"), D.DatasetNotFound)
        assert [
            p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".lock")
        ] == []  # nothing half-extracted kept
    # an incomplete archive dropped into data/: `auto` runs on synthetic faces and says why
    data = tmp_path / "data"
    data.mkdir()
    (data / "UTKFace.tar.gz").write_bytes(broken["truncated"])
    monkeypatch.delenv("UTKFACE_DIR", raising=False)
    monkeypatch.setattr(A, "DATA_DIR", data)
    assert resolve("auto").name == "smoke"
    assert "incomplete archive" in capsys.readouterr().out
    # an explicit source fails with the same message, one error line first and exit code 2
    assert D.main(["--source", str(data / "UTKFace.tar.gz"), "--size", "16"]) == 2
    assert capsys.readouterr().err.startswith(f"error: incomplete archive {data / 'UTKFace.tar.gz'}: download it again")


def test_a_killed_extraction_is_not_trusted(synthetic_folder, tmp_path):
    """#13.5: leftovers of a killed extraction are hidden from locate() and removed by the next extraction."""
    tgz = tmp_path / "UTKFace.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(synthetic_folder, arcname="UTKFace")
    out = tmp_path / "out"
    stale = out / D.EXTRACTED / ".extracting-UTKFace.tar.gz-999-abcdef" / "UTKFace"
    stale.mkdir(parents=True)
    shutil.copy(next(synthetic_folder.glob("*.chip.jpg")), stale)
    with pytest.raises(D.DatasetNotFound):
        D.locate(extract_to=out)  # the half-extracted folder is not taken for the data set
    folder = D.locate(tgz, extract_to=out)
    assert folder.name == "UTKFace" and folder.parent.parent == out / D.EXTRACTED  # <archive>-<sha256>/UTKFace
    assert len(list(folder.iterdir())) == len(list(synthetic_folder.iterdir()))
    assert not stale.parent.exists()
    assert D.locate(extract_to=out) == folder  # given once from elsewhere (--source), found again without it


@pytest.mark.parametrize(
    "args, says",
    [
        (["--workers", "-1"], "--workers must be at least 1"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--synthetic", "0"], "--synthetic must be at least 10"),
        (["--size", "0"], "--size must be between 8 and 512"),
        (["--size", "4096"], "--size must be between 8 and 512"),
    ],
)
def test_cli_checks_arguments_first(args, says, monkeypatch, capsys):
    """#13.7: bad arguments: one line on stderr, exit code 2, nothing loaded."""
    monkeypatch.setattr(CLI, "load_utkface", lambda *a, **k: pytest.fail("loaded despite bad arguments"))
    assert D.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {says}") and err.count("\n") == 1


def test_bad_workers_are_rejected_by_the_library_too(synthetic_folder):
    """#13.7: load_utkface(workers=-1) is a ValueError, before any decoding."""
    with pytest.raises(ValueError, match="workers"):
        D.load_utkface(synthetic_folder, 32, workers=-1)


def test_duplicate_groups_report_what_happened(synthetic_folder, tmp_path):
    """#13.8: groups count only files whose names gave labels; copies that differ in race alone are reported so."""
    folder = copy_of(synthetic_folder, tmp_path)
    base = load(folder, tmp_path)
    singles = base.table[base.table.hash.map(base.table.hash.value_counts()) == 1]
    a, b = singles.iloc[0], singles.iloc[1]
    race = (a.race + 1) % 5
    (folder / f"{a.age}_{a.gender}_{race}_20170101999999001.jpg.chip.jpg").write_bytes((folder / a.file).read_bytes())
    (folder / "copy of a kept face.jpg").write_bytes((folder / b.file).read_bytes())  # skipped for its name
    ds = load(folder, tmp_path)
    groups = D.duplicate_groups(ds.files)
    assert ds.report.duplicate_groups == len(groups) == 3
    assert ds.report.duplicates == {
        "one copy kept": 1,
        "one copy kept, race differs": 1,
        "all dropped (labels conflict)": 1,
    }
    assert ds.report.skipped["duplicate image, same age and gender, race differs"] == 1
    assert b.file in set(ds.table.file)  # its byte-identical, badly named copy does not make it a "dropped" group
    race_group = groups[groups.action == "one copy kept, race differs"].iloc[0]
    assert race_group.kept == 1 and f"_{race}" in race_group["labels (age_gender_race)"]
    assert ds.report.loaded == base.report.loaded  # the rule for what is kept did not change
    assert "one copy kept, race differs" in str(ds.report)


@pytest.mark.parametrize("sig, code", [("SIGTERM", 143), ("SIGINT", 130), ("SIGKILL", -9)])
def test_stopping_the_loader_stops_its_workers_at_once(synthetic_folder, tmp_path, sig, code):
    """#13.9: SIGTERM, Ctrl-C or kill -9 during decoding: no decode worker outlives the loader, no .tmp is left."""
    import os
    import signal
    import time

    import psutil

    cache_dir = tmp_path / "cache"
    proc = cli(synthetic_folder, cache_dir, "--workers", "2", delay=30)
    parent = psutil.Process(proc.pid)
    assert wait_for(
        lambda: (
            sum(
                "utils" in " ".join(c.cmdline()) or "multiprocessing" in " ".join(c.cmdline())
                for c in parent.children(recursive=True)
            )
            >= 2
        ),
        timeout=60,
    )
    workers = parent.children(recursive=True)
    time.sleep(0.5)
    t0 = time.monotonic()
    os.kill(proc.pid, getattr(signal, sig))
    assert proc.wait(timeout=10) == code
    assert time.monotonic() - t0 < 3
    _gone, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive
    if sig != "SIGKILL":
        assert not tmp_files(cache_dir)


def test_old_caches_can_be_pruned(synthetic_folder, tmp_path, capsys):
    """#13.9: prune_caches / --prune delete the caches of other data sets and keep the one in use."""
    cache_dir = tmp_path / "cache"
    other = make_synthetic(12, seed=3, root=tmp_path / "other", irregular=False)
    keep = load(synthetic_folder, tmp_path, cache_dir=cache_dir)
    gone = load(other, tmp_path, cache_dir=cache_dir)
    removed = D.prune_caches([keep], cache_dir)
    assert [f for f, _n in removed] == [Path(gone.report.cache).parent]
    assert Path(keep.report.cache).exists() and not Path(gone.report.cache).exists()
    assert len(list((cache_dir / "index").iterdir())) == 1
    load(other, tmp_path, cache_dir=cache_dir)
    assert (
        D.main(
            [
                "--source",
                str(synthetic_folder),
                "--size",
                "32",
                "--workers",
                "1",
                "--cache-dir",
                str(cache_dir),
                "--prune",
            ]
        )
        == 0
    )
    assert "pruned 1 cache folder(s)" in capsys.readouterr().out


def test_a_full_disk_leaves_no_temporary_file(synthetic_folder, tmp_path, monkeypatch):
    """#13.9: running out of space while decoding: a clear error naming the cache, no .tmp left, next load works."""
    import errno

    def full(paths, size, out, workers=None):
        out[:2] = 1
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(LOAD, "decode_images", full)
    with pytest.raises(OSError, match="no space left to write .*images-32px.*free some disk space"):
        load(synthetic_folder, tmp_path)
    assert not tmp_files(tmp_path / "cache")
    monkeypatch.undo()
    assert not load(synthetic_folder, tmp_path).report.from_cache


def test_loading_a_subset_writes_nothing_under_data_splits(synthetic_folder, tmp_path):
    """#13.9: a data set the committed split does not cover gets its split in the cache, not in data/splits/."""
    committed = LOAD.SPLITS_DIR / "utkface.csv"
    before = sorted(LOAD.SPLITS_DIR.iterdir())
    ds = D.load_utkface(
        synthetic_folder, 16, cache_dir=tmp_path / "cache", split_file=committed, workers=1, verbose=False
    )
    assert sorted(LOAD.SPLITS_DIR.iterdir()) == before
    assert (Path(ds.report.cache).parent / f"utkface-{ds.fingerprint}.csv").exists()


# ------------------------------------------------------------- fault-injection review: what the loader reads and writes


def drawn_faces(folder: Path, n: int = 6, start: int = 20) -> list[Path]:
    """``n`` distinct faces with canonical names in ``folder`` (no duplicates, nothing corrupt)."""
    from utils.data.synthetic import draw_face

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    paths = []
    for i in range(n):
        path = folder / f"{start + i}_{i % 2}_{i % 5}_2017010112{i:07d}.jpg.chip.jpg"
        draw_face(start + i, i % 2, i % 5, rng).save(path)
        paths.append(path)
    return paths


HOSTILE_LOAD = """
import json, sys
from utils.data import load_utkface
from utils.data.decode import decode_one
ds = load_utkface(sys.argv[1], 32, cache_dir=sys.argv[2], split_file=sys.argv[3], workers=1, verbose=False)
decoded = {name: decode_one(sys.argv[1] + "/" + name, 32)[1] for name in sys.argv[4:]}
print(json.dumps({"files": ds.report.files, "loaded": ds.report.loaded, "skipped": ds.report.skipped,
                  "decoded": decoded, "report": str(ds.report)}))
"""


def test_only_regular_files_are_read_and_every_other_entry_is_counted(tmp_path):
    """Review #1: a FIFO, a symlink to /dev/zero, a dangling symlink, a symlink loop, a huge file or a folder named
    like a face neither hangs, floods nor fails the loader: each is skipped with a counted reason; a symlink to a
    regular face loads. Run in a child process with a time and memory limit, so the faults it guards fail, not hang."""
    import os
    import resource
    import subprocess
    import sys

    folder = tmp_path / "UTKFace"
    faces = drawn_faces(folder)
    outside = tmp_path / "elsewhere" / faces[-1].name
    outside.parent.mkdir()
    faces[-1].rename(outside)
    faces[-1].symlink_to(outside)  # a symlink to a regular file: fine
    fifo = "25_0_0_20170101000000001.jpg.chip.jpg"
    os.mkfifo(folder / fifo)
    zero = "26_1_0_20170101000000002.jpg.chip.jpg"
    (folder / zero).symlink_to("/dev/zero")
    (folder / "27_0_1_20170101000000003.jpg.chip.jpg").symlink_to(tmp_path / "gone.jpg")
    loop_a, loop_b = folder / "28_1_1_20170101000000004.jpg.chip.jpg", folder / "29_0_2_20170101000000005.jpg.chip.jpg"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    with open(folder / "30_1_2_20170101000000006.jpg.chip.jpg", "wb") as f:
        f.truncate(16 * 2**20 + 1)  # past the 16 MiB cap; sparse: costs no disk, and must not be read
    (folder / "31_0_3_20170101000000007.jpg.chip.jpg").mkdir()

    def limits():
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))  # reading /dev/zero whole fails, not swaps

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                HOSTILE_LOAD,
                str(folder),
                str(tmp_path / "cache"),
                str(tmp_path / "split.csv"),
                fifo,
                zero,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            preexec_fn=limits,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the loader hung on an entry that is not a regular file")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["skipped"] == {
        "not a regular file: a FIFO (named pipe)": 1,
        "symlink to a device": 1,
        "dangling symlink (its target does not exist)": 1,
        "symlink loop": 2,
        "larger than the 16 MiB cap for one image": 1,
        "not a regular file: a directory": 1,
    }
    assert out["loaded"] == len(faces) and out["files"] == len(faces) + 7 == len(list(folder.iterdir()))
    assert "symlink loop" in out["report"] and "FIFO" in out["report"]  # reported, not only counted
    assert all(reason.startswith("changed after the scan") for reason in out["decoded"].values())  # decode re-checks
    ds = load(folder, tmp_path)  # and again from the cache, in this process
    assert ds.report.from_cache and faces[-1].name in set(ds.table.file)


def bomb_tar(path: Path, declared: int) -> Path:
    """A tar.gz of a few KB whose one member's header declares ``declared`` bytes (its data is not there)."""
    import gzip

    info = tarfile.TarInfo("UTKFace/25_0_0_20170101000000001.jpg.chip.jpg")
    info.size = declared
    path.write_bytes(gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 2**16))
    return path


def extracted_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".lock")] if out.exists() else []


def test_archive_members_beyond_the_caps_are_refused(tmp_path, monkeypatch):
    """Review #2: a 3 GB member in a tiny archive is refused on its header, before anything is written; members larger
    than the per-member cap, or more bytes in all than the total cap, refuse the whole archive (tar and zip)."""
    bomb = bomb_tar(tmp_path / "UTKFace.tar.gz", 3 * 2**30)
    assert bomb.stat().st_size < 2**20
    with pytest.raises(ValueError, match=r"is 3,221,225,472 bytes, more than the .* allowed for one member") as info:
        D.extract_archive(bomb, tmp_path / "out-bomb")
    assert isinstance(info.value, D.UnsafeArchive)
    assert extracted_files(tmp_path / "out-bomb") == []

    monkeypatch.setattr(A, "ARCHIVE_MEMBER_LIMIT", 2**20)
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (2**20 + 1))
    tgz, zp = tmp_path / "big" / "UTKFace.tar.gz", tmp_path / "big" / "UTKFace.zip"
    tgz.parent.mkdir()
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(big, arcname="UTKFace/30_0_0_20170101000000001.jpg.chip.jpg")
    with zipfile.ZipFile(zp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(big, "UTKFace/30_0_0_20170101000000001.jpg.chip.jpg")
    for archive in (tgz, zp):
        out = tmp_path / f"out-{archive.suffix}"
        with pytest.raises(D.UnsafeArchive, match="more than the 1,048,576 allowed for one member"):
            D.locate(archive, extract_to=out)
        assert extracted_files(out) == []

    small = tmp_path / "small.bin"
    small.write_bytes(b"\0" * 2**20)
    many = tmp_path / "many" / "UTKFace.tar.gz"
    many.parent.mkdir()
    with tarfile.open(many, "w:gz") as tf:
        for i in range(4):
            tf.add(small, arcname=f"UTKFace/3{i}_0_0_20170101000000001.jpg.chip.jpg")
    # in all: at most ARCHIVE_RATIO_LIMIT times the archive's size (but at least one member's cap) ...
    with pytest.raises(D.UnsafeArchive, match=r"unpacks to more than 1,048,576 bytes \(the cap is 10x its"):
        D.extract_archive(many, tmp_path / "out-ratio")
    assert extracted_files(tmp_path / "out-ratio") == []
    # ... and at most ARCHIVE_TOTAL_LIMIT
    monkeypatch.setattr(A, "ARCHIVE_MEMBER_LIMIT", 64 * 2**20)
    monkeypatch.setattr(A, "ARCHIVE_TOTAL_LIMIT", 3 * 2**20)
    with pytest.raises(D.UnsafeArchive, match="unpacks to more than 3,145,728 bytes"):
        D.extract_archive(many, tmp_path / "out-many")
    assert extracted_files(tmp_path / "out-many") == []


def same_size_tar(path: Path, members: dict[str, bytes]) -> Path:
    """An uncompressed tar of ``members`` with fixed mtimes: the same names and sizes give the same archive size."""
    import io

    with tarfile.open(path, "w") as tf:
        for name, content in members.items():
            info = tarfile.TarInfo(f"UTKFace/{name}")
            info.size, info.mtime = len(content), 1_500_000_000
            tf.addfile(info, io.BytesIO(content))
    return path


def test_a_replaced_archive_is_extracted_again_into_a_fresh_folder(tmp_path):
    """Review #2: extraction is keyed by the archive's content (SHA-256): another archive of the same name, size and
    mtime is extracted again, and a smaller one replaces the old folder instead of being merged into it."""
    import os

    faces = {p.name: p.read_bytes() for p in drawn_faces(tmp_path / "faces")}
    archive = tmp_path / "UTKFace.tar"
    out = tmp_path / "out"
    same_size_tar(archive, faces)
    first = D.locate(archive, extract_to=out)
    assert {p.name: p.read_bytes() for p in first.iterdir()} == faces
    st = archive.stat()

    other = {name: content[::-1] for name, content in faces.items()}  # other bytes, same names and sizes
    same_size_tar(archive, other)
    os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert archive.stat().st_size == st.st_size and archive.stat().st_mtime_ns == st.st_mtime_ns
    second = D.locate(archive, extract_to=out)
    assert {p.name: p.read_bytes() for p in second.iterdir()} == other

    fewer = dict(list(faces.items())[:3])
    same_size_tar(archive, fewer)
    third = D.locate(archive, extract_to=out)
    assert {p.name: p.read_bytes() for p in third.iterdir()} == fewer  # not merged into the old folder
    kept = [p for p in (out / D.EXTRACTED).iterdir() if p.is_dir()]
    assert kept == [third.parent] and third.parent.name == f"UTKFace.tar-{D.archive_digest(archive)[:16]}"
    mtime = third.stat().st_mtime_ns
    assert D.locate(archive, extract_to=out) == third and third.stat().st_mtime_ns == mtime  # extracted once


@pytest.mark.parametrize("edit", ["age", "gender"])
def test_labels_edited_in_the_cached_scan_are_caught(synthetic_folder, tmp_path, capsys, edit):
    """Review #3: a label changed in the cache's files.csv (name and hash untouched) is named in a warning, the scan
    is rebuilt, and the labels served are the ones the file names give; the decoded images are still reused."""
    folder = copy_of(synthetic_folder, tmp_path)
    first = load(folder, tmp_path)
    manifest = Path(first.report.cache).parent / "files.csv"
    victim = first.table.iloc[0]
    rows = pd.read_csv(manifest, keep_default_na=False, dtype=str)
    rows.loc[rows.file == victim.file, edit] = str((victim.age + 30) if edit == "age" else 1 - victim.gender)
    rows.to_csv(manifest, index=False)
    capsys.readouterr()
    again = load(folder, tmp_path)
    err = capsys.readouterr().err
    assert f"{manifest}" in err and "rebuilding" in err
    assert again.table.set_index("file").loc[victim.file, edit] == victim[edit]
    assert again.table[["file", "age", "gender", "race"]].equals(first.table[["file", "age", "gender", "race"]])
    assert again.report.from_cache  # only the scan was rebuilt: the decoded array is the same
    capsys.readouterr()
    assert load(folder, tmp_path).report.from_cache and "warning" not in capsys.readouterr().err


def damage_split(path: Path, damage: str) -> None:
    lines = path.read_text().splitlines()
    if damage == "a value other than train/val/test":
        lines[5] = lines[5].rsplit(",", 1)[0] + ",trian"
    elif damage == "an empty value":
        lines[7] = lines[7].rsplit(",", 1)[0] + ","
    elif damage == "merge-conflict markers":
        name, split = lines[4].rsplit(",", 1)
        lines[4:5] = [
            "<<<<<<< HEAD",
            f"{name},{split}",
            "=======",
            f"{name},{'val' if split != 'val' else 'test'}",
            ">>>>>>> other",
        ]
    elif damage == "every test face moved to train":
        lines = [line.replace(",test", ",train") for line in lines]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("where", ["given", "cache"])
@pytest.mark.parametrize(
    "damage",
    ["a value other than train/val/test", "an empty value", "merge-conflict markers", "every test face moved to train"],
)
def test_a_bad_split_file_is_never_used(synthetic_folder, tmp_path, where, damage):
    """Review #4: a split file (a committed one, or the cache's own) with a value other than train/val/test, git
    merge-conflict markers, or whole splits moved, raises an error naming the file and what to do; never used."""
    kw = {"split_file": tmp_path / "split.csv"} if where == "given" else {"split_file": "auto", "synthetic": True}
    ds = load(synthetic_folder, tmp_path, **kw)
    path = tmp_path / "split.csv" if where == "given" else Path(ds.report.cache).parent / "split.csv"
    assert path.exists() and load(synthetic_folder, tmp_path, **kw).split_id == ds.split_id  # a sound one is reused
    damage_split(path, damage)
    with pytest.raises(ValueError, match="is not used") as info:
        load(synthetic_folder, tmp_path, **kw)
    message = str(info.value)
    assert isinstance(info.value, D.SplitFileError)
    assert str(path) in message or LOAD.shown(path) in message
    assert "delete" in message and ("git checkout" in message) == (where == "given")
    path.unlink()  # what the message says: delete it, and the loader writes the same split again
    assert load(synthetic_folder, tmp_path, **kw).split_id == ds.split_id


def test_split_shares_tolerate_a_subset_but_not_moved_faces(synthetic_folder, tmp_path):
    """Review #4: a split file made for more files than are loaded (a subset of its data) is reused, its shares
    judged with the sampling allowance; the committed split passes the same checks against its own files."""
    from utils.base.labels import parse_name
    from utils.data import splits

    full = load(synthetic_folder, tmp_path)
    folder = copy_of(synthetic_folder, tmp_path)
    single = full.files[full.files.hash != ""].groupby("hash").file.transform("size") == 1
    alone = set(full.files[full.files.hash != ""][single].file)  # files with no byte-identical copy
    for name in [f for f in full.table.file if f in alone][::4]:
        (folder / name).unlink()
    subset = load(folder, tmp_path, cache_dir=tmp_path / "cache2")
    assert subset.table.set_index("file").split.equals(full.table.set_index("file").split.loc[subset.table.file])
    assert splits.share_tolerance(0.15, 100, 100, 18) == pytest.approx(0.05)  # exact cover: a third of the fraction
    committed = LOAD.SPLITS_DIR / "utkface.csv"
    if committed.exists():
        saved = splits.read_split_file(committed)
        labels = [parse_name(f)[0] for f in saved.file]
        table = pd.DataFrame(
            {
                "file": saved.file,
                "age": [lb.age for lb in labels],
                "gender": [lb.gender for lb in labels],
                "hash": saved.file,
            }
        )
        splits.check_shares(saved.split, table, len(saved), 0, committed)


def test_every_file_the_loader_writes_is_written_atomically(synthetic_folder, tmp_path, monkeypatch):
    """Review #5: every cache file, record, index entry and split file is written through utils.base.files.atomic_path
    (a temporary file in the same folder, fsynced, renamed)."""
    from contextlib import contextmanager

    from utils.base import files

    finals, real = [], files.atomic_path

    @contextmanager
    def spy(path):
        with real(path) as tmp:
            yield tmp
        finals.append(Path(path))

    monkeypatch.setattr(files, "atomic_path", spy)
    load(synthetic_folder, tmp_path)
    written = {p for p in (tmp_path / "cache").rglob("*") if p.is_file() and not p.name.endswith(".lock")}
    assert written and tmp_path / "split.csv" in finals
    assert written <= set(finals), sorted(str(p) for p in written - set(finals))


def test_a_write_cut_short_at_any_point_is_never_reused(synthetic_folder, tmp_path, monkeypatch):
    """Review #5: a loader killed while fsyncing any file it writes (the last moment before the rename) leaves no
    half-written file in place and no .tmp; the next load rebuilds what is missing and matches a clean load."""
    import os

    clean = load(synthetic_folder, tmp_path, cache_dir=tmp_path / "clean", split_file=tmp_path / "clean.csv")
    real_fsync = os.fsync
    calls = {"n": 0, "crash_at": None}

    def fsync(fd):
        if os.path.isfile(f"/proc/self/fd/{fd}") or not os.path.isdir(f"/proc/self/fd/{fd}"):
            calls["n"] += 1
            if calls["n"] == calls["crash_at"]:
                raise KeyboardInterrupt("killed while writing")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    load(synthetic_folder, tmp_path, cache_dir=tmp_path / "count", split_file=tmp_path / "count.csv")
    writes = calls["n"]
    assert writes >= 7  # files.csv and its record, the index, the array, the decode table, its record, the split
    for k in range(1, writes + 1):
        calls.update(n=0, crash_at=k)
        cache_dir, split = tmp_path / f"cache-{k}", tmp_path / f"split-{k}.csv"
        with pytest.raises(KeyboardInterrupt):
            load(synthetic_folder, tmp_path, cache_dir=cache_dir, split_file=split)
        assert not tmp_files(cache_dir) and not list(tmp_path.glob(".*.tmp"))
        calls["crash_at"] = None
        ds = load(synthetic_folder, tmp_path, cache_dir=cache_dir, split_file=split)
        assert np.array_equal(np.asarray(ds.images), np.asarray(clean.images)), k
        assert ds.table.equals(clean.table) and ds.split_id == clean.split_id


def test_irregular_names_lists_the_bent_names_with_their_outcome(tmp_path):
    files = pd.DataFrame(
        {
            "file": ["26_1_2_20170116174525125.jpg.chip.jpg", "39_1_20170116174525125.jpg.chip.jpg"],
            "age": [26, 39],
            "gender": [1, 1],
            "race": [2, -1],
            "reason": ["", ""],
        }
    )
    odd = D.irregular_names(files)
    assert odd.file.tolist() == ["39_1_20170116174525125.jpg.chip.jpg"] and odd.outcome.tolist() == ["loaded"]


def test_a_dead_writers_temporary_file_is_removed_and_a_live_ones_kept(tmp_path):
    """A writer killed inside ``atomic_path`` leaves ``.<name>.<pid>.tmp``; the next writer of that file removes it."""
    import subprocess
    import sys

    from utils.base import files

    target = tmp_path / "entry"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, live, other = (
        tmp_path / f".entry.{dead.pid}.tmp",
        tmp_path / f".entry.{os.getppid()}.tmp",  # a running process: the test's parent
        tmp_path / f".another.{dead.pid}.tmp",
    )
    for p in (stale, live, other):
        p.write_text("half")
    assert files.remove_dead_writers_files(target) == [stale]
    assert not stale.exists() and live.exists() and other.exists()
