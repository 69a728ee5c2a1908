"""The package's import graph: module-level imports point one way (no cycles), every module imports on its own,
and the recipe registry is readable without Keras or TensorFlow (the CLI's parser and --help are built from it)."""

from __future__ import annotations

import ast
import os
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import horses_humans

PACKAGE = "horses_humans"
SRC = Path(horses_humans.__file__).resolve().parents[1]  # the checkout's src/, whichever checkout this is


def package_modules() -> dict[str, tuple[Path, bool]]:
    """{dotted name: (source file, is a package)} for the package and every module below it."""
    modules = {PACKAGE: (Path(horses_humans.__file__), True)}
    for info in pkgutil.walk_packages(horses_humans.__path__, PACKAGE + "."):
        origin = Path(info.module_finder.find_spec(info.name).origin)
        modules[info.name] = (origin, info.ispkg)
    return modules


def module_level(body: list[ast.stmt]):
    """The statements that run at import: into if/try/with/class blocks, not into functions, not `if TYPE_CHECKING`."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                yield from module_level(node.body)
            yield from module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *[h.body for h in node.handlers]):
                yield from module_level(block)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from module_level(node.body)


def imported_names(name: str, is_package: bool, tree: ast.Module, modules: dict, everywhere: bool = False) -> set[str]:
    """Package modules `name` imports at module level, or `everywhere` (inside functions too); relative imports
    resolved, `from . import sub` included."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree) if everywhere else module_level(tree.body):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules}
    return found


def import_graph(everywhere: bool = False) -> dict[str, set[str]]:
    """{module: package modules it imports at module level (or anywhere)}. Importing a.b.c also runs a.b's __init__,
    so parent packages count, except the importer's own ancestors (always initialised before it runs)."""
    modules = package_modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}  # itself and its ancestors
        edges = set()
        for target in imported_names(name, is_package, ast.parse(path.read_text(), str(path)), modules, everywhere):
            parts = target.split(".")
            edges |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        graph[name] = {t for t in edges if t in modules and t not in own}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def run_python(code: str) -> subprocess.CompletedProcess:
    """`python -c code` in a fresh interpreter that sees this checkout's package first."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_the_cycle_finder_finds_cycles_and_resolves_relative_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    tree = ast.parse(
        "from . import sub, VALUE\nfrom ..config import X\nif TYPE_CHECKING:\n    import keras\n"
        "def f():\n    from .late import y\n"
    )
    modules = {"p", "p.q", "p.q.sub", "p.config", "p.q.late"}
    assert imported_names("p.q.mod", False, tree, modules) == {"p.q", "p.q.sub", "p.config"}
    assert imported_names("p.q.mod", False, tree, modules, everywhere=True) == {
        "p.q",
        "p.q.sub",
        "p.config",
        "p.q.late",
        "keras",
    }


def test_module_level_imports_have_no_cycle():
    graph = import_graph()
    assert {"horses_humans.models.transfer", "horses_humans.serve.app"} <= set(graph)  # the walk found subpackages
    assert "horses_humans.models.weights" in graph["horses_humans.models.transfer"]  # and their imports
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_inside_functions_are_only_for_start_up_time():
    """Moving any import inside a function to the top of its module would still make no cycle: inner imports only
    defer heavy libraries (the CLI's TensorFlow), they never hold a cycle apart."""
    cycle = find_cycle(import_graph(everywhere=True))
    assert cycle is None, "cycle once inner imports are moved to the top: " + " -> ".join(cycle)


@pytest.mark.slow
def test_every_module_imports_first_in_a_fresh_interpreter():
    """Each module first in its own process: an import that only works after another module was loaded fails here."""
    names = sorted(package_modules())
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        results = dict(zip(names, pool.map(lambda name: run_python(f"import {name}"), names)))
    failed = {name: (r.stderr.strip().splitlines() or ["?"])[-1] for name, r in results.items() if r.returncode}
    assert not failed, "\n".join(f"{name}: {error}" for name, error in failed.items())


def test_recipes_weights_and_backbones_import_without_keras_or_tensorflow():
    result = run_python(
        "import sys\nimport horses_humans.models.recipes, horses_humans.models.weights, "
        "horses_humans.models.backbones\n"
        "from horses_humans.models.recipes import RECIPES\nprint(sorted(RECIPES))\n"
        "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    recipes, heavy = result.stdout.splitlines()
    assert recipes == str(sorted(["augmented", "baseline", "inception_v3", "mobilenet_v2", "recommended"]))
    assert heavy == "[]", f"importing the recipe registry loaded {heavy}"


# The layer contract: a subpackage (or top-level module: api) imports only those in layers below its own (and config,
# the package's root for __version__); packages of one layer do not import each other; nothing but cli imports serve,
# nothing imports cli.
LAYERS = [
    {"core"},
    {"data", "models"},
    {"runs"},
    {"inference"},
    {"training", "analysis", "export"},
    {"experiments"},
    {"api"},  # the public Python API (horses_humans.api): train, load_run, Run; the CLI's commands call it
    {"serve"},
    {"cli"},  # the command starts the server; no library layer imports either
]
FREE = {"config"}  # beside core: frozen dataclasses and the error type, imported by every layer


def layer_of(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def subpackage(module: str) -> str | None:
    """The layer unit of a module: 'data' for horses_humans.data.images, 'api' for the top-level module
    horses_humans.api; None for the package itself, config and __main__ (free)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] not in FREE | {"__main__"} else None


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """'a.b -> c.d (why)' for every import, anywhere in a module, that breaks the layer contract."""
    found = []
    for importer, targets in graph.items():
        here = subpackage(importer)
        for target in sorted(targets):
            there = subpackage(target)
            if here is None or there is None or here == there:
                continue
            if layer_of(there) >= layer_of(here):
                found.append(f"{importer} -> {target} ({here} may import only layers below it)")
    return found


def test_every_subpackage_and_top_level_module_is_in_one_layer_and_says_what_it_holds():
    packages = {name.split(".")[1] for name in package_modules() if name.count(".") == 1}
    packages = {p for p in packages if p not in FREE | {"__main__"}}
    assert packages == set().union(*LAYERS), "a subpackage or top-level module without a layer: add it to LAYERS"
    for name in packages:
        module = __import__(f"{PACKAGE}.{name}", fromlist=["_"])
        assert (module.__doc__ or "").strip(), f"{PACKAGE}.{name} has no docstring saying what it holds"


def test_the_layer_checker_finds_an_upward_import():
    graph = {"horses_humans.data.x": {"horses_humans.runs.y", "horses_humans.core.z", "horses_humans.config"}}
    assert layer_violations(graph) == [
        "horses_humans.data.x -> horses_humans.runs.y (data may import only layers below it)"
    ]
    assert layer_violations({"horses_humans.training.a": {"horses_humans.export.b"}})  # one layer: no
    assert not layer_violations({"horses_humans.serve.a": {"horses_humans.inference.b"}})
    assert layer_violations({"horses_humans.training.a": {"horses_humans.api"}})  # a top-level module is a layer
    assert not layer_violations(
        {"horses_humans.cli.a": {"horses_humans.api"}, "horses_humans.api": {"horses_humans.config"}}
    )


def test_imports_point_down_the_layers():
    """Everywhere, functions included: serve never imports training, nothing imports cli or serve."""
    violations = layer_violations(import_graph(everywhere=True))
    assert not violations, "\n".join(violations)


# Issue 18's targets for the shape of the code: few functions with long parameter lists (a context object or a small
# frozen dataclass travels instead), and no module too long to read in one sitting.
MAX_PARAMETERS = 6  # self and cls not counted
MAX_WIDE_FUNCTIONS = 3
MAX_LINES = 500


def parameter_count(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Positional, keyword-only, *args and **kwargs parameters, not counting self or cls."""
    a = function.args
    names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs] + [p.arg for p in (a.vararg, a.kwarg) if p]
    return sum(1 for name in names if name not in ("self", "cls"))


def wide_functions(tree: ast.Module, where: str) -> list[str]:
    """'where:line name (n parameters)' for every function or method in tree with more than MAX_PARAMETERS, in
    line order."""
    functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return [
        f"{where}:{node.lineno} {node.name} ({parameter_count(node)} parameters)"
        for node in sorted(functions, key=lambda node: node.lineno)
        if parameter_count(node) > MAX_PARAMETERS
    ]


def source_files() -> dict[str, Path]:
    """{path under the package, e.g. 'analysis/plots.py': file} for every module of the package."""
    root = Path(horses_humans.__file__).parent
    return {path.relative_to(root).as_posix(): path for path, _ in package_modules().values()}


def test_the_parameter_counter_skips_self_and_counts_every_kind():
    tree = ast.parse(
        "class A:\n    def m(self, a, b, c, d, e, f): ...\n    def n(self, a, b, c, d, e, f, g): ...\n"
        "def f(a, /, b, *args, c, **kwargs): ...\nasync def g(a, b, c, d, e, f, *, h=1): ...\n"
    )
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert {name: parameter_count(f) for name, f in functions.items()} == {"m": 6, "n": 7, "f": 5, "g": 7}
    assert wide_functions(tree, "x.py") == ["x.py:3 n (7 parameters)", "x.py:5 g (7 parameters)"]


def test_few_functions_take_more_than_six_parameters():
    wide = [
        found for name, path in source_files().items() for found in wide_functions(ast.parse(path.read_text()), name)
    ]
    assert len(wide) <= MAX_WIDE_FUNCTIONS, (
        f"{len(wide)} functions take more than {MAX_PARAMETERS} parameters (at most {MAX_WIDE_FUNCTIONS}): "
        + "; ".join(wide)
        + ". Pass a Workspace (core/workspace.py) or a small frozen dataclass of what belongs together instead."
    )


def test_no_module_is_over_500_lines():
    lengths = {name: len(path.read_text().splitlines()) for name, path in source_files().items()}
    assert len(lengths) > 60, sorted(lengths)  # the walk found the subpackages' modules, not only the top level
    long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}; split each along a seam into modules of one job."
