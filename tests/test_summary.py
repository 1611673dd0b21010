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
    for nb in summary.NOTEBOOKS.values():  # every notebook with an article table appears, none silently dropped
        shown = any(e.notebook == nb.stem[:2] and e.has_article_figures for e in summary.EXPERIMENTS.values())
        assert (f"(notebooks/{nb.stem}.ipynb)" in block) == shown
    assert "| 4 CL 128 64 32 16 | 0.2963 |" in block  # the article's figure beside ours, trained or not


def test_replace_block_needs_the_markers():
    with pytest.raises(ValueError, match="markers"):
        summary.replace_block("no markers here", "x")
    text = f"a\n{summary.BEGIN}\nold\n{summary.END}\nb"
    assert summary.replace_block(text, "new") == f"a\n{summary.BEGIN}\nnew\n{summary.END}\nb"
