"""Execute the course notebooks headlessly, export HTML, and keep the committed notebooks clean: the command line
(running one notebook, merging its outputs back and exporting HTML are ``utils.render``'s).

    python -m utils.notebooks course --profile auto      # executed copies + HTML in build/<profile>/
    python -m utils.notebooks render --profile laptop    # re-execute the committed notebooks, so GitHub shows outputs
    python -m utils.notebooks clean                      # strip execution noise, rewrite the Colab cell and badge

Each notebook runs with papermill (PROFILE and the other parameters injected) into a copy; its outputs are then put
back into the notebook's own cells. No notebook written here carries papermill's injected-parameters cell, so Run All
on a committed notebook runs its parameters cell (PROFILE = "auto") exactly as a new user's does.

'render' replaces a committed notebook only when its copy ran without an error and the banner of its setup cell
claims the data the profile means (real UTKFace for laptop and full, synthetic faces for smoke). It never puts
synthetic outputs over real-data ones unless --force. A failed copy stays in build/render/ for a look.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import nbformat

from .base.paths import BUILD_DIR, GITHUB_REPO, NOTEBOOKS_DIR, course_notebooks, shown
from .base.profiles import PROFILES
from .render import RenderError, clean_nb, errors, execute, to_html, write_notebook

BANNER = re.compile(r"(SYNTHETIC DATA|Real UTKFace) — profile '([\w-]+)'")
"""What utils.course.banner shows under every setup cell (a test checks the two agree)."""


SOLUTIONS = "solutions"
"""The sub-folder of the notebooks' folder that holds each notebook's worked answers to its exercises."""
APPENDIX = "appendix"
"""The sub-folder of optional deeper notebooks (``A1_...``), each continuing one course notebook."""


def notebooks(folder: Path | None = None) -> list[Path]:
    """The numbered course notebooks in order, then the appendices (``appendix/A1_*``), then the solution notebooks
    (``solutions/NN_*``)."""
    root = Path(folder or NOTEBOOKS_DIR)
    return (
        list(course_notebooks(root).values())
        + sorted((root / APPENDIX).glob("A[0-9]_*.ipynb"))
        + sorted((root / SOLUTIONS).glob("[0-9][0-9]_*.ipynb"))
    )


def _output_text(out) -> str:
    parts = [out.get("text", "")]
    for mime in ("text/html", "text/plain"):
        value = out.get("data", {}).get(mime, "")
        parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


def claim(nb) -> tuple[str, str] | None:
    """What the setup cell's banner says the outputs come from: ('real' or 'synthetic', profile), or None."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            found = BANNER.search(_output_text(out))
            if found:
                return ("synthetic" if found.group(1).startswith("SYNTHETIC") else "real"), found.group(2)
    return None


def sync_setup_cells(nb, name: str):
    """Rewrite a course notebook's Colab badge and Colab cell from GITHUB_REPO (other notebooks are left alone);
    ``name`` is its path under notebooks/, e.g. 'solutions/02_multi_output_model_solutions.ipynb'."""
    from .colab import cell_source

    if len(nb.cells) < 2 or "colab-badge" not in nb.cells[0].source or "google.colab" not in nb.cells[1].source:
        return nb
    nb.cells[0].source = re.sub(
        r"colab\.research\.google\.com/github/[^)\s]+",
        f"colab.research.google.com/github/{GITHUB_REPO}/blob/main/notebooks/{name}",
        nb.cells[0].source,
    )
    nb.cells[1].source = cell_source()
    return nb


def cleaned(path: Path):
    """A notebook file as ``clean`` writes it: cleaned (see clean_nb), its Colab cell and badge rewritten."""
    nb = nbformat.read(path, as_version=4)
    resolved = path.resolve()
    name = resolved.relative_to(NOTEBOOKS_DIR).as_posix() if resolved.is_relative_to(NOTEBOOKS_DIR) else path.name
    return sync_setup_cells(clean_nb(nb), name)


def clean(path: Path) -> None:
    """Clean a notebook file in place (``cleaned``)."""
    write_notebook(cleaned(path), path)


def check(nb, profile: str, committed: tuple[str, str] | None = None, force: bool = False) -> list[str]:
    """Why an executed notebook may not replace the committed one (an empty list when it may)."""
    problems = [f"error output in {e}" for e in errors(nb)]
    said = claim(nb)
    if said is None:
        return problems + ["no banner saying real or synthetic data"]
    kind, name = said
    if profile != "auto" and name != profile:
        problems.append(f"the banner says profile {name!r}, not {profile!r}")
    if name in PROFILES and PROFILES[name].data != kind:
        problems.append(f"the banner says {kind} data for profile {name!r}, which means {PROFILES[name].data} data")
    if committed and committed[0] == "real" and kind == "synthetic" and not force:
        problems.append("it would replace real-data outputs with synthetic ones (add --force to mean it)")
    return problems


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _arguments(argv):
    parser = _Parser(
        prog="python -m utils.notebooks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["course", "render", "clean"])
    parser.add_argument("--profile", default="auto", help=f"{', '.join(PROFILES)} or auto (default)")
    parser.add_argument(
        "--only", nargs="+", metavar="NN", help="notebook numbers (01 03: each with its solutions) or file stems"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", help="override the notebooks' SEEDS (tables still show every stored seed)"
    )
    parser.add_argument(
        "--train",
        action="store_true",
        help="also train the runs the tables lack (hours on real data); "
        "default: read the stored runs, train only on synthetic faces",
    )
    parser.add_argument("--force", action="store_true", help="render: let synthetic outputs replace real-data ones")
    parser.add_argument("--notebooks-dir", type=Path, default=None, help=argparse.SUPPRESS)  # tests
    args = parser.parse_args(argv)
    if args.profile != "auto" and args.profile not in PROFILES:
        parser.error(f"unknown profile {args.profile!r}; choose one of {', '.join(PROFILES)} or auto")
    found = notebooks(args.notebooks_dir)
    if not found:
        parser.error(f"no numbered notebooks in {args.notebooks_dir or NOTEBOOKS_DIR}")
    if args.only:
        unknown = [n for n in args.only if not any(_picked(p, n) for p in found)]
        if unknown:
            parser.error(
                f"no notebook numbered or named {', '.join(unknown)}; there are "
                f"{', '.join(dict.fromkeys(p.name[:2] for p in found))}"
            )
    if args.force and args.mode != "render":
        parser.error("--force only applies to render")
    if args.mode == "clean" and (args.seeds or args.train or args.profile != "auto"):
        parser.error("clean executes nothing: --profile, --seeds and --train do not apply")
    args.chosen = [p for p in found if not args.only or any(_picked(p, n) for n in args.only)]
    return parser, args


def _picked(path: Path, wanted: str) -> bool:
    """--only: a number picks the notebook and its solutions ('02'); a file stem picks that one notebook."""
    return path.name[:2] == wanted or path.stem == wanted


def main(argv: list[str] | None = None) -> int:
    """Command line: 'course' writes executed copies to build/, 'render' replaces the committed notebooks safely."""
    parser, args = _arguments(argv)
    if args.mode == "clean":
        for nb in args.chosen:
            clean(nb)
        return 0
    if args.mode == "render" and args.profile != "auto" and not args.force:  # refuse before hours of training
        refused = [
            p.name
            for p in args.chosen
            if PROFILES[args.profile].data == "synthetic"
            and (claim(nbformat.read(p, as_version=4)) or ("",))[0] == "real"
        ]
        if refused:
            parser.error(
                f"profile {args.profile!r} would replace the real-data outputs of {', '.join(refused)} "
                "with synthetic ones; add --force to mean it"
            )
    if args.train:
        from .train.runner import TRAIN_ENV

        os.environ[TRAIN_ENV] = "1"  # inherited by the notebook kernels
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the kernels inherit it: no TensorFlow INFO lines in outputs
    failed = 0
    # 'auto' is named by what it resolves to (laptop with the data, smoke without), so one folder never mixes both
    resolved = args.profile if args.mode != "course" or args.profile != "auto" else _resolved_profile()
    for src in args.chosen:
        extra = {"SHOW_FACES": False} if args.mode == "render" else {}  # committed copies never hold UTKFace faces
        if args.seeds:
            extra["SEEDS"] = args.seeds
        folder = BUILD_DIR / ("render" if args.mode == "render" else resolved)
        dst = folder / src.name
        print(f"executing {src.name} (profile {args.profile}) ...", flush=True)
        try:
            seconds = execute(src, dst, args.profile, extra or None, cwd=src.parent)
            if args.mode == "render":
                problems = check(
                    nbformat.read(dst, as_version=4), args.profile, claim(nbformat.read(src, as_version=4)), args.force
                )
                if problems:
                    raise RenderError("; ".join(problems))
                write_notebook(nbformat.read(dst, as_version=4), src)
                dst.unlink()
        except RenderError as exc:
            failed += 1
            kept = f"; the run is in {shown(dst)}" if dst.exists() else ""
            what = "left as it was" if args.mode == "render" else "failed"
            print(f"  {src.name} {what}: {exc}{kept}", file=sys.stderr, flush=True)
            if args.mode == "course" and dst.exists():
                _to_html_quietly(dst)
            continue
        where = src if args.mode == "render" else dst
        html = to_html(dst) if args.mode == "course" else None
        print(f"  {seconds:.0f} s -> {shown(where)}" + (f", {shown(html)}" if html else ""), flush=True)
    return 1 if failed else 0


def _resolved_profile() -> str:
    from .data.datasets import resolve_profile

    return resolve_profile("auto").name


def _to_html_quietly(path: Path) -> None:
    try:
        to_html(path)
    except Exception:  # the notebook's own failure is what the user needs to see
        pass


if __name__ == "__main__":
    sys.exit(main())
