"""Execute the course notebooks headlessly (papermill), export HTML, and keep committed notebooks clean.

    python -m utils.notebooks course --profile auto      # executed copies + HTML in build/
    python -m utils.notebooks render --profile laptop    # execute in place, so GitHub shows real outputs
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat

from .paths import BUILD_DIR, REPO_ROOT

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def notebooks() -> list[Path]:
    """The numbered course notebooks, in order."""
    return sorted(p for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def clean(path: Path) -> None:
    """Drop widget state and execution noise so a committed notebook diffs well and stays small."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        cell.metadata.pop("widgets", None)
        for out in cell.get("outputs", []):
            out.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)
    nbformat.write(nb, path)


def execute(src: Path, dst: Path, profile: str, extra: dict | None = None, timeout: int = 3600) -> float:
    """Run one notebook with papermill, PROFILE (and any extra parameters) injected; return the seconds taken."""
    import papermill as pm

    dst.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pm.execute_notebook(str(src), str(dst), parameters={"PROFILE": profile, **(extra or {})}, cwd=str(NOTEBOOKS_DIR),
                        kernel_name="python3", progress_bar=False, execution_timeout=timeout)
    clean(dst)
    return time.perf_counter() - t0


def to_html(path: Path) -> Path:
    """Export an executed notebook to HTML beside it."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(path))
    out = path.with_suffix(".html")
    out.write_text(body, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: 'course' writes executed copies to build/, 'render' executes the notebooks in place."""
    parser = argparse.ArgumentParser(prog="python -m utils.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["course", "render", "clean"])
    parser.add_argument("--profile", default="auto")
    parser.add_argument("--only", nargs="*", help="notebook number prefixes, e.g. 01 03")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the notebooks' SEEDS (tables still show every stored seed)")
    parser.add_argument("--no-train", action="store_true", help="train nothing: tables show the runs already stored")
    args = parser.parse_args(argv)
    if args.no_train:
        from .experiments import TRAIN_ENV

        os.environ[TRAIN_ENV] = "0"  # inherited by the notebook kernels
    chosen = [p for p in notebooks() if not args.only or p.name[:2] in args.only]
    for nb in chosen:
        if args.mode == "clean":
            clean(nb)
            continue
        dst = nb if args.mode == "render" else BUILD_DIR / args.profile / nb.name
        print(f"executing {nb.name} (profile {args.profile}) ...", flush=True)
        extra = {"SHOW_FACES": False} if args.mode == "render" else {}  # committed copies never hold UTKFace faces
        if args.seeds:
            extra["SEEDS"] = args.seeds
        seconds = execute(nb, dst, args.profile, extra or None)
        html = to_html(dst) if args.mode == "course" else None
        print(f"  {seconds:.0f} s -> {dst.relative_to(REPO_ROOT)}" + (f", {html.relative_to(REPO_ROOT)}" if html else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
