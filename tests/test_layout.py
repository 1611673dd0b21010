"""The package's plan: no import circles, a docstring on every public function, every committed run readable."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from utils.base.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "utils"


def _module(path: Path) -> str:
    return ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(tree: ast.Module, module: str, is_package: bool, type_only: bool = True) -> set[str]:
    """Every utils module a module imports, at any depth: lazy imports count, and so do those under
    ``if TYPE_CHECKING:`` (a circle through a type is still a circle) unless ``type_only=False``."""
    skip = {
        id(n)
        for node in ast.walk(tree)
        if not type_only and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    base = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("utils")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                stem = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            if not stem.startswith("utils"):
                continue
            for a in node.names:  # "from . import heads" names a module; "from .runs import Run" names a member
                found.add(
                    f"{stem}.{a.name}"
                    if (PACKAGE.parent / f"{stem}.{a.name}".replace(".", "/")).with_suffix(".py").exists()
                    or (PACKAGE.parent / f"{stem}.{a.name}".replace(".", "/")).is_dir()
                    else stem
                )
    return found - {module}


def import_graph(type_only: bool = True) -> dict[str, set[str]]:
    """Module -> the utils modules it imports (those it imports for typing only too, unless ``type_only=False``)."""
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module(path)
        graph[module] = _imports(ast.parse(path.read_text()), module, path.name == "__init__.py", type_only)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph (as a path that returns to its start), or None."""
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> list[str] | None:
        for nxt in sorted(graph.get(node, set())):
            if nxt in trail:
                return trail[trail.index(nxt) :] + [nxt]
            if nxt in graph and nxt not in done:
                found = visit(nxt, trail + [nxt])
                if found:
                    return found
        done.add(node)
        return None

    for module in sorted(graph):
        if module not in done and (found := visit(module, [module])):
            return found
    return None


def test_no_import_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the check finds a circle
    graph = import_graph()
    assert {
        "utils.nets.heads",
        "utils.nets.bodies",
        "utils.train.runs",
        "utils.read.tables",
        "utils.train.probes",
    } <= set(graph)
    assert graph["utils.train.runner"] >= {"utils.data.datasets", "utils.train.store"}  # relative imports are read
    assert "utils.train.experiments" in graph["utils.read.tables"]  # a type-only import counts
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
    run_time = import_graph(type_only=False)
    assert (
        "utils.train.experiments" not in run_time["utils.read.tables"] | run_time["utils.read.notes"]
    )  # tables get Experiment objects


def test_every_public_function_has_a_docstring():
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), f"{path.name} has no module docstring"
        for node in tree.body:
            if (
                isinstance(node, (ast.FunctionDef, ast.ClassDef))
                and not node.name.startswith("_")
                and not ast.get_docstring(node)
            ):
                missing.append(f"{_module(path)}.{node.name}")
    assert not missing, missing


def test_every_committed_record_loads_as_a_run_and_lands_in_a_table(monkeypatch):
    from utils import exercises
    from utils.nets import heads
    from utils.train.experiments import EXPERIMENTS
    from utils.train.store import ResultsStore

    for head in (exercises.LogAge(), exercises.ExpectedRank()):  # added by the solution notebooks around their runs
        monkeypatch.setitem(heads.HEADS, head.key, head)

    store = ResultsStore(REPO_ROOT / "results", writable=False)
    paths = sorted((REPO_ROOT / "results").glob("*-*-*/**/*-seed*.json"))
    if not paths:
        pytest.skip("no committed runs")
    configs = {v.config for e in EXPERIMENTS.values() for v in e.variants}
    for path in paths:
        before = path.read_bytes()
        run = store.read(path)  # schema, types, and configuration digest and seed against the file name
        assert run is not None, path.name
        assert path.read_bytes() == before
        if path.parent.name != "exercises":  # an exercise's run is its own configuration (utils/exercises.py)
            assert run.config in configs, f"{path.name} belongs to no experiment's variant"
        stored = json.loads(before)
        assert {k: v for k, v in run.to_dict().items() if k != "config"} == {
            k: v for k, v in stored.items() if k != "config"
        }


def test_every_lazy_import_in_utils_resolves():
    """Imports inside functions are not checked at import time: each must name a module that exists (a module moved
    into a subpackage keeps its old relative imports otherwise, and fails only when that function runs)."""
    import importlib

    for path in PACKAGE.rglob("*.py"):
        package = ".".join(path.relative_to(REPO_ROOT).parent.parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                module = importlib.import_module("." * node.level + (node.module or ""), package)
                for alias in node.names:
                    assert hasattr(module, alias.name) or importlib.import_module(f"{module.__name__}.{alias.name}")


FLOORS = ("base", "data", "nets", "train", "read", "use")  # bottom to top; modules directly in utils/ sit on top


def _floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS.index(parts[1]) if len(parts) >= 2 and parts[1] in FLOORS else len(FLOORS)


def test_each_floor_imports_only_from_itself_and_below():
    graph = import_graph()
    assert {m.split(".")[1] for m in graph if m.count(".") >= 2} >= set(FLOORS)  # the floors exist
    upward = [f"{m} -> {t}" for m, targets in graph.items() for t in targets if _floor(t) > _floor(m)]
    assert not upward, upward


def _named_modules(described: str) -> list[str]:
    """The modules one floor's entry of the README's map names: its list after the floor's own words and the first
    colon, each name followed by its description in brackets (dropped here)."""
    text = " ".join(described.split()[1:])  # without the folder
    while re.search(r"\([^()]*\)", text):
        text = re.sub(r"\([^()]*\)", "", text)
    listed = text.split(":", 1)[1]
    return [name.strip("` ") for name in re.split(r",|\band\b", listed) if name.strip()]


def test_readme_layout_map_names_every_module_on_its_floor_and_no_other():
    sample = "utils/x/  a floor: one (a, b: c (d)), two and __main__ (`x`), three"
    assert _named_modules(sample) == ["one", "two", "__main__", "three"]  # names, never words of a description
    text = (REPO_ROOT / "README.md").read_text()
    block = text.split("`utils/` is built in floors", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    for line in block.splitlines():
        if line.startswith("utils/"):
            folder = line.split()[0].strip("/")
            entries[folder] = line
        elif line.strip() and entries:
            entries[list(entries)[-1]] += " " + line
    assert set(entries) == {"utils", *(f"utils/{f}" for f in FLOORS)}, sorted(entries)
    for folder, described in entries.items():
        named = _named_modules(described)
        modules = {p.stem for p in (REPO_ROOT / folder).glob("*.py") if p.stem != "__init__"}
        assert not (missed := sorted(modules - set(named))), f"README's map misses {folder}/: {missed}"
        assert not (extra := sorted(set(named) - modules)), f"README's map names modules {folder}/ lacks: {extra}"
        assert len(named) == len(set(named)), f"README's map names a module of {folder}/ twice: {named}"


MAX_MODULE_LINES = 360  # "no module over ~350 lines": one concern per module, readable in one sitting


def test_no_module_is_longer_than_one_sitting():
    long = {
        str(p.relative_to(REPO_ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these modules by concern: {long}"
