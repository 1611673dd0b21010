"""Run a notebook headlessly and keep what it printed: papermill executes a copy (over IPC, TensorFlow's start-up
lines dropped), the outputs go back into the notebook's own cells with papermill's cells and execution noise cleaned
away, a failed cell says where it failed, and the result exports to HTML. ``utils.notebooks`` is the command line that
renders the course with it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat

from .base.files import atomic_path
from .base.quiet import TF_NOISE

INJECTED = "injected-parameters"
"""papermill's tag on the cell it adds; committed notebooks never carry one (a test checks)."""
PAPERMILL_ERROR = "papermill-error-cell-tag"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class RenderError(Exception):
    """A notebook run that failed, or whose outputs are not what was asked for."""


def tags(cell) -> list[str]:
    """A cell's tags."""
    return list(cell.get("metadata", {}).get("tags", []))


def errors(nb) -> list[str]:
    """Every error output, as 'cell N: Name: message'."""
    return [
        f"cell {i}: {out.get('ename')}: {str(out.get('evalue', '')).splitlines()[0] if out.get('evalue') else ''}"
        for i, cell in enumerate(nb.cells)
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


KERNELSPEC = {"display_name": "Python 3 (utkface course)", "language": "python", "name": "python3"}
"""What every notebook names as its kernel; the Makefile installs a kernel of this name and display name."""


def clean_nb(nb):
    """Drop papermill's injected and error cells, widget state and execution noise, and join split prints (in place;
    returns nb).

    When an injected cell goes, the remaining cells are numbered 1, 2, ... as a Run All numbers them."""
    kept = [c for c in nb.cells if INJECTED not in tags(c) and PAPERMILL_ERROR not in tags(c)]
    if any(INJECTED in tags(c) for c in nb.cells):
        counts = iter(range(1, len(kept) + 1))
        for cell in kept:
            if cell.cell_type == "code" and cell.get("execution_count") is not None:
                cell.execution_count = next(counts)
                for out in cell.get("outputs", []):
                    if out.get("output_type") == "execute_result":
                        out["execution_count"] = cell.execution_count
    nb.cells = kept
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("papermill", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)  # the kernel `make install` registers: JupyterLab opens it unmodified
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = join_streams(cell.get("outputs", []))
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        cell.metadata.pop("widgets", None)
        for out in cell.get("outputs", []):
            out.get("data", {}).pop(WIDGET_VIEW, None)
            if out.get("output_type") == "execute_result":  # Out[n] beside In[n]
                out["execution_count"] = cell.get("execution_count")
    return nb


def write_notebook(nb, path: Path) -> None:
    """Write a notebook so that a reader never sees half of it and a failure leaves the old file
    (``files.atomic_path``)."""
    with atomic_path(path) as tmp:
        nbformat.write(nb, tmp)


def kernel_manager_class():
    """A kernel manager talking to the kernel over IPC where the system allows it: over TCP, ipykernel warns on every
    start ('Kernel is running over TCP without encryption'), which filled `make course` output."""
    from jupyter_client.manager import KernelManager

    if os.name != "posix":
        return KernelManager

    class IPCKernelManager(KernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            if "ip" not in kwargs:  # the default, 'kernel-ipc', is relative: to the kernel's folder for the kernel,
                # to ours for the client, and they differ when the notebook runs in its own folder
                from uuid import uuid4

                from jupyter_core.paths import jupyter_runtime_dir

                runtime = Path(jupyter_runtime_dir())
                runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
                kwargs["ip"] = str(runtime / f"kernel-{uuid4().hex[:12]}-ipc")
            super().__init__(**kwargs)

    return IPCKernelManager


def drop_tf_noise(outputs: list) -> list:
    """The outputs without TensorFlow's start-up lines on stderr; a stderr output left empty goes."""
    kept = []
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            text = out.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            lines = [line for line in text.splitlines(keepends=True) if not TF_NOISE.match(line.rstrip("\n"))]
            if not "".join(lines).strip():
                continue
            out["text"] = "".join(lines)
        kept.append(out)
    return kept


def join_streams(outputs: list) -> list:
    """The outputs with each run of consecutive stream outputs of one name (stdout, stderr) joined into one, as a
    reader sees them; the kernel splits a print's text across messages as it pleases."""
    joined: list = []
    for out in outputs:
        prev = joined[-1] if joined else None
        if out.get("output_type") == "stream" and prev and prev.get("output_type") == "stream":
            if prev.get("name") == out.get("name"):
                text = [prev.get("text", ""), out.get("text", "")]
                prev["text"] = "".join("".join(t) if isinstance(t, list) else t for t in text)
                continue
        joined.append(out)
    return joined


def merge_outputs(original, executed):
    """The original notebook's cells (sources, ids, metadata) with the executed copy's outputs, numbered 1, 2, ...
    as in a Run All; papermill's injected cell is left out."""
    nb = clean_nb(nbformat.from_dict(original))
    ran = clean_nb(nbformat.from_dict(executed)).cells
    if len(ran) != len(nb.cells) or any(a.source != b.source for a, b in zip(nb.cells, ran)):
        raise RenderError("the executed copy's cells differ from the notebook's")
    count = 0
    for cell, done in zip(nb.cells, ran):
        if cell.cell_type != "code":
            continue
        cell.outputs = join_streams(drop_tf_noise(done.get("outputs", [])))
        if done.get("execution_count") is None:
            cell.execution_count = None
        else:
            count += 1
            cell.execution_count = count
        for out in cell.outputs:  # Out[n] beside In[n]: papermill counted its injected cell too
            if out.get("output_type") == "execute_result":
                out["execution_count"] = cell.execution_count
    if "language_info" in executed.metadata:
        nb.metadata["language_info"] = executed.metadata["language_info"]
    return nb


def execute(
    src: Path, dst: Path, profile: str, extra: dict | None = None, timeout: int = 3600, cwd: Path | None = None
) -> float:
    """Run src with papermill (PROFILE and extra injected) and write dst: src's own cells with the new outputs.

    dst is written even when a cell fails (the traceback shows where); RenderError then says which cell.
    Returns the seconds taken.
    """
    import papermill as pm

    dst.parent.mkdir(parents=True, exist_ok=True)
    for stale in dst.parent.glob(f".{dst.stem}.*papermill.ipynb"):  # left by a killed run
        stale.unlink(missing_ok=True)
    raw = dst.with_name(f".{dst.stem}.{os.getpid()}.papermill.ipynb")
    t0 = time.perf_counter()
    failure = None
    try:
        pm.execute_notebook(
            str(src),
            str(raw),
            parameters={"PROFILE": profile, **(extra or {})},
            cwd=str(cwd or src.parent),
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=timeout,
            kernel_manager_class=kernel_manager_class(),
        )
    except Exception as exc:  # a failing cell, a timeout, a dead kernel: the original stays as it was
        failure = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
    try:
        if raw.exists():
            executed = nbformat.read(raw, as_version=4)
            write_notebook(merge_outputs(nbformat.read(src, as_version=4), executed), dst)
    finally:
        raw.unlink(missing_ok=True)
        found = errors(nbformat.read(dst, as_version=4))
        if found:  # 'cell N: Name: message' says more than papermill's exception
            failure = found[0]
    if failure:
        raise RenderError(failure)
    return time.perf_counter() - t0


def to_html(path: Path) -> Path:
    """Export an executed notebook to HTML beside it."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(path))
    out = path.with_suffix(".html")
    out.write_text(body, encoding="utf-8")
    return out
