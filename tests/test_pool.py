"""Pooling a class's runs into one store: each record lands where its own profile, data, configuration and seed say;
nothing is overwritten and every file passed over is named."""

import json

import pytest

from tests.records import record
from utils.nets.models import ARTICLE
from utils.train.pool import pool
from utils.train.runs import Run
from utils.train.store import ResultsStore, file_name, folder_name


def put(folder, name: str, content) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))


def test_pool_adds_each_seed_once_keeps_what_is_stored_and_names_what_it_passes_over(tmp_path):
    home = folder_name(Run.from_dict(record(0)))
    put(tmp_path / "ana" / "results" / home, "a.json", record(0))
    put(tmp_path / "ben" / "results" / home, "b.json", record(1))
    put(tmp_path / "ben" / "results" / home, "copy.json", record(0))  # the same run as ana's: stored once
    put(tmp_path / "cem" / "results" / home, "c.json", record(0, loss=0.9))  # another run under seed 0
    put(tmp_path / "cem", "notes.txt", "hello")
    put(tmp_path / "cem", "broken.json", "{")
    store = tmp_path / "store"
    report = pool([tmp_path / "ana", tmp_path / "ben", tmp_path / "cem"], store)
    assert sorted(p.name for p in report.added) == [file_name(ARTICLE, 0), file_name(ARTICLE, 1)]
    assert all(p.parent == store / home for p in report.added)
    assert [p.name for p in report.same] == ["copy.json"]
    text = report.text()
    assert text.startswith(f"added 2 file(s); 1 already stored (identical)\n    2 into {home}/")
    assert f"another run of that seed is stored ({file_name(ARTICLE, 0)})" in text and "c.json" in text
    assert "not a run record (.json)" in text and "notes.txt" in text
    assert "not a valid run record" in text and "broken.json" in text
    runs = ResultsStore(store, writable=False).runs_in(store / home)
    assert [(r.seed, r.metrics["loss"]) for r in runs] == [(0, 0.5), (1, 0.5)]  # ana's seed 0 kept, not cem's
    again = pool([tmp_path / "ana", tmp_path / "ben"], store)
    assert not again.added and len(again.same) == 3  # pooling twice adds nothing


def test_pool_refuses_a_record_whose_faces_are_not_its_profiles_size(tmp_path):
    wrong = record(0)
    wrong["data"]["image_size"] = 64
    put(tmp_path / "src", "x.json", wrong)
    report = pool([tmp_path / "src"], tmp_path / "store")
    assert not report.added and "refused by the store" in report.text() and "64 px" in report.text()


def test_pool_on_the_command_line(tmp_path, capsys):
    from utils import __main__ as cli

    put(tmp_path / "src", "x.json", record(3))
    assert cli.main(["pool", str(tmp_path / "src"), "--into", str(tmp_path / "store")]) == 0
    assert "added 1 file(s)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        cli.main(["pool", str(tmp_path / "nowhere")])
    assert exit_.value.code == 2 and "no such file or folder" in capsys.readouterr().err


def test_pool_files_each_record_by_its_experiment_and_brings_a_kept_model_along(tmp_path):
    """Collected flat, a probed, an exercise and a kept-model run still land in their subfolders; a kept model's
    .keras travels with its record, and one without it is passed over (notebook 09 could not serve it)."""
    home = folder_name(Run.from_dict(record(0)))
    flat = tmp_path / "flat"
    put(flat, "probed.json", record(1) | {"probes": {"bn": {"x": [1.0]}}})
    put(flat, "exercise.json", record(2) | {"experiment": "exercises"})
    put(flat, "kept.json", record(3) | {"experiment": "use_model"})
    put(flat, "kept.keras", "model bytes")
    put(flat, "lonely.keras", "model bytes")
    put(tmp_path / "other", "kept.json", record(4) | {"experiment": "use_model"})  # its .keras was left behind
    (flat / "dangling.json").symlink_to(tmp_path / "gone.json")
    store = tmp_path / "store"
    report = pool([flat, tmp_path / "other"], store)
    added = sorted(str(p.relative_to(store / home)) for p in report.added)
    keep = f"models/{file_name(ARTICLE, 3)}"
    assert added == [f"exercises/{file_name(ARTICLE, 2)}", keep, keep.replace(".json", ".keras")] + [
        f"probes/{file_name(ARTICLE, 1)}"
    ]
    assert (store / home / keep).with_suffix(".keras").read_text() == "model bytes"
    text = report.text()
    assert "a kept model without its run record beside it" in text and "lonely.keras" in text
    assert "a kept-model run whose .keras is not beside it" in text
    assert "not a regular file" in text and "dangling.json" in text


def test_pool_leaves_an_unreadable_stored_file_alone_and_says_so(tmp_path):
    home = folder_name(Run.from_dict(record(0)))
    put(tmp_path / "store" / home, file_name(ARTICLE, 0), "{")  # a stored file cut short
    put(tmp_path / "src", "a.json", record(0))
    report = pool([tmp_path / "src"], tmp_path / "store")
    assert not report.added and "the stored file it would replace is unreadable" in report.text()
    assert (tmp_path / "store" / home / file_name(ARTICLE, 0)).read_text() == "{"


def test_one_rule_says_which_subfolder_a_run_lives_in():
    """The store's rule, used by the runner (through each experiment), the exercises and ``pool`` alike."""
    from utils.train.experiments import EXPERIMENTS
    from utils.train.store import SUBFOLDERS, subfolder

    assert (subfolder("x", probes=True), subfolder("x", keep_model=True), subfolder("exercises")) == SUBFOLDERS
    assert subfolder("x", probes=True, keep_model=True) == "probes" and subfolder("augmentation") == ""
    assert subfolder("exercises", probes=True) == "exercises"  # an exercise that measured gradients stays an exercise
    assert {e.sub for e in EXPERIMENTS.values()} == {"", "probes", "models"}  # the course's tables use all three


def test_pool_files_an_exercise_run_with_probes_among_the_exercises(tmp_path):
    """A probe-carrying exercise record (notebook 02's gradient exercise) must not land in probes/, where it would take
    the file name of a probed course run."""
    exercise = record(0) | {"experiment": "exercises", "probes": {"gradients": {"epochs": [0]}}}
    put(tmp_path / "src", "x.json", exercise)
    report = pool([tmp_path / "src"], tmp_path / "store")
    assert [p.parent.name for p in report.added] == ["exercises"]
