import pytest

from utils import summary


def test_readme_results_section_matches_the_committed_store():
    text = (summary.REPO_ROOT / "README.md").read_text()
    assert summary.replace_block(text, summary.results_markdown()) == text, (
        "README.md's results section is stale: run `python -m utils.summary --write`"
    )


def test_section_lists_every_table_with_the_article_figure(tmp_path):
    block = summary.results_markdown(root=tmp_path)
    assert "No stored `laptop` runs on real data yet." in block
    folder = summary.stored_folder(root=summary.REPO_ROOT / "results")
    if folder is None:
        pytest.skip("no committed laptop runs")
    block = summary.results_markdown()
    for nb, path in summary.course_notebooks().items():  # every notebook with an article table appears, none dropped
        shown = any(e.notebook == nb and e.has_article_figures for e in summary.EXPERIMENTS.values())
        assert (f"(notebooks/{path.name})" in block) == shown
    assert "| 4 CL 128 64 32 16 | 0.2963 |" in block  # the article's figure beside ours, trained or not


def test_replace_block_needs_the_markers():
    with pytest.raises(ValueError, match="markers"):
        summary.replace_block("no markers here", "x")
    text = f"a\n{summary.BEGIN}\nold\n{summary.END}\nb"
    assert summary.replace_block(text, "new") == f"a\n{summary.BEGIN}\nnew\n{summary.END}\nb"


def test_readme_links_every_course_notebook_and_appendix_and_no_missing_one():
    """The folder is the one list of notebooks: the README's table follows it (a new notebook needs its row)."""
    import re

    from utils.base.paths import NOTEBOOKS_DIR
    from utils.notebooks import notebooks

    text = (summary.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\(notebooks/([\w/.-]+\.ipynb)\)", text))
    assert all((NOTEBOOKS_DIR / name).is_file() for name in linked), sorted(linked)
    wanted = {p.relative_to(NOTEBOOKS_DIR).as_posix() for p in notebooks() if not p.parent.name == "solutions"}
    assert wanted <= linked, sorted(wanted - linked)


def test_the_claims_table_keeps_its_columns_when_nothing_is_stored(capsys):
    """A notebook filters it by column in the smoke profile too, where no run is ever stored."""
    from utils.summary import claims_frame

    table = claims_frame(kind="synthetic")
    assert table.empty and {"claim (the article)", "verdict", "caveat"} <= set(table.columns)
    assert "nothing to judge yet" in capsys.readouterr().out


def test_headline_rows_are_picked_by_metric_key_not_by_label():
    """A row's metric label names its own configuration's losses ('test loss (MSE)' for an age-only network), so the
    README picks the headline rows by key: none is dropped when its label differs from the article's."""
    from utils.base.profiles import PROFILES
    from utils.read.tables import METRICS, experiment_table
    from utils.train.experiments import get

    exp = get("bn_probe")  # the article network (2·MSE + BCE) and the age-only network (MSE)
    table = experiment_table(exp, [], PROFILES["smoke"])
    loss = summary.headline_rows(table, "loss")
    assert len(loss) == len(table) // len(exp.metrics) and len(loss) >= 2
    assert set(loss.metric) != {METRICS["loss"]}  # the age-only row says its own loss: a label match would drop it
    assert summary.headline_rows(loss, "loss").equals(loss)  # its attrs name its own rows: it can be picked again
