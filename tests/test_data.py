import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from utils import data as D
from utils.synthetic import make_synthetic

from .conftest import REAL_ARCHIVE


def load(src, tmp_path, **kw):
    kw.setdefault("cache_dir", tmp_path / "cache")
    kw.setdefault("split_file", tmp_path / "split.csv")
    return D.load_utkface(src, 32, workers=1, verbose=False, **kw)


def test_every_file_is_accounted_for(small_data):
    r = small_data.report
    assert r.loaded + sum(r.skipped.values()) == r.files == 128
    assert r.skipped == {
        "duplicate image, same labels": 1,
        "duplicate image, conflicting labels": 2,
        "corrupt or unreadable image": 1,
        "unreadable name: name does not follow age_gender_race_timestamp": 1,
        "not a .jpg file": 1,
    }
    assert r.converted == {"L": 1, "CMYK": 1}
    assert r.duplicate_groups == 2
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
    from utils.synthetic import draw_face

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
    from utils.synthetic import draw_face

    rng = np.random.default_rng(0)
    young = np.mean([np.asarray(draw_face(5, 1, 0, rng), float) for _ in range(5)], axis=0)
    old = np.mean([np.asarray(draw_face(80, 1, 0, rng), float) for _ in range(5)], axis=0)
    assert np.abs(young - old).mean() > 5  # age changes the picture


def test_cli_prints_summary_and_json(synthetic_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(D, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(D, "SPLITS_DIR", tmp_path / "splits")
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
    assert ds.table.groupby("hash").split.nunique().max() == 1
    committed = D.SPLITS_DIR / "utkface.csv"
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
    monkeypatch.setattr(D, "DATA_DIR", tmp_path / "nothing")
    monkeypatch.setattr(colab, "DRIVE_CANDIDATES", (str(tmp_path / "no-drive"),))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert colab.prepare() is None
    assert "synthetic faces" in capsys.readouterr().out


def test_a_split_file_that_misses_loaded_files_is_not_used(synthetic_folder, tmp_path):
    split = tmp_path / "split.csv"
    pd.DataFrame({"file": ["someone_else.jpg"], "split": ["train"]}).to_csv(split, index=False)
    ds = load(synthetic_folder, tmp_path, split_file=split)
    own = tmp_path / f"split-{ds.fingerprint}.csv"
    assert own.exists() and set(pd.read_csv(own).file) == set(ds.table.file)
    assert ds.table.split.notna().all()


def test_paths_are_shown_relative_to_the_repository_or_home():
    from pathlib import Path

    from utils.paths import REPO_ROOT, shown

    assert shown(REPO_ROOT / "data" / "UTKFace") == "data/UTKFace"
    assert shown(Path.home() / "datasets" / "UTKFace") in ("~/datasets/UTKFace", str(Path.home() / "datasets" / "UTKFace"))
    assert shown("synthetic faces (n=120)") == "synthetic faces (n=120)"
    assert shown("/elsewhere/UTKFace.tar.gz") == "/elsewhere/UTKFace.tar.gz"
