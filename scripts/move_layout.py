"""One-off: move the flat package into subpackages by stage (issue 18), rewriting every import and every dotted or
file-path mention of a moved module, with no other edit. Run once from the checkout's root: python scripts/move_layout.py
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

PKG = "horses_humans"
SRC = Path("src") / PKG
MOVES = {  # old module (below the package) -> new module
    "atomic": "core.atomic", "arraycache": "core.arraycache", "batching": "core.batching",
    "progress": "core.progress", "backend": "core.backend", "tables": "core.tables",
    "data": "data.datasets", "images": "data.images", "inputfiles": "data.inputfiles", "datacheck": "data.check",
    "samples": "data.samples",
    "backbones": "models.backbones", "weights": "models.weights", "outputs": "models.outputs",
    "recipes": "models.recipes", "recipes.registry": "models.registry", "recipes.cnn": "models.cnn",
    "recipes.transfer": "models.transfer",
    "runs": "runs.store", "runschema": "runs.schema", "rundata": "runs.record", "modelcard": "runs.modelcard",
    "predict": "inference.predictor", "runtimes": "inference.runtimes", "unsure": "inference.unsure",
    "calibration": "inference.calibration", "resultfiles": "inference.resultfiles", "rayengine": "inference.rayengine",
    "training": "training.loop", "resume": "training.resume", "devices": "training.devices",
    "features": "training.features", "tracking": "training.tracking",
    "evaluation": "analysis.evaluation", "explain": "analysis.explain", "plots": "analysis.plots",
    "report": "analysis.report", "compare": "analysis.compare", "htmlpage": "analysis.htmlpage",
    "answers": "analysis.answers",
    "export": "export.pipeline", "parity": "export.parity", "webbuild": "export.webbuild",
    "experiments": "experiments.reproduce", "sweep": "experiments.sweep",
    "cli": "cli.main", "options": "cli.options",
}
PACKAGES = {
    "core": "Foundations every stage uses: atomic writes, the self-checking array cache, batching, progress bars, the\n"
            "Keras backend set-up and Markdown tables. Imports only the standard library, third-party packages and\n"
            "horses_humans.config.",
    "data": "Data sets on disk: the three layouts of class folders, decoding images to pixels, importing, download,\n"
            "walking input files, and `data check`. Imports only core and config.",
    "models": "What a model is: the recipe registry (one module per family), backbones, offline weights and output\n"
              "kinds. Imports only core and config.",
    "runs": "The run-directory contract: every RUN/* file name, the store, the JSON schemas, the data record and the\n"
            "model card. Imports core, data, models and config.",
    "inference": "Answers from a trained run: the Predictor, runtimes (Keras, ONNX, TFLite), calibration, the unsure\n"
                 "rule, result writers and the Ray engine. Imports runs and below.",
    "training": "Fitting a run: the training loop, resume, devices, cached features and tracking. Imports inference\n"
                "and below.",
    "analysis": "Looking at runs: evaluation metrics, explanations (Grad-CAM), plots, the report, comparisons and\n"
                "real-photo scoring. Imports inference and below.",
    "export": "Exported models: the formats, the stage -> parity check -> publish pipeline and the web build. Imports\n"
              "inference and below.",
    "experiments": "Many runs at once: reproducing the reference's experiments (experiments.toml) and sweeps. Imports\n"
                   "training, analysis, export and below.",
    "cli": "The `horses-humans` command: parses arguments and calls the layers below. Nothing imports it.",
}


def new_name(old: str) -> str:
    """The new dotted name (with the package prefix) of an old one; unchanged when it did not move."""
    rel = old[len(PKG) + 1:] if old.startswith(PKG + ".") else None
    if rel is None:
        return old
    for key in sorted(MOVES, key=len, reverse=True):
        if rel == key or rel.startswith(key + "."):
            return f"{PKG}.{MOVES[key]}{rel[len(key):]}"
    return old


def old_modules() -> dict[str, Path]:
    """{dotted name: file} of every module and package in the old tree."""
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def target_path(name: str, modules: dict[str, Path]) -> Path:
    """Where the module `name` (old dotted) is written in the new tree."""
    new = new_name(name).split(".")
    return SRC.parent.joinpath(*new).with_suffix(".py")


def relative(importer_pkg: str, target: str) -> str:
    """A relative module reference from package importer_pkg to the dotted target ('.', '..core.atomic', ...)."""
    a, b = importer_pkg.split("."), target.split(".")
    common = 0
    while common < min(len(a), len(b)) and a[common] == b[common]:
        common += 1
    return "." * (len(a) - common + 1) + ".".join(b[common:])


def rewrite_import(node: ast.stmt, importer_old: str, importer_new: str, is_pkg_old: bool, modules) -> str | None:
    """The new text of an import statement, or None when it needs no change."""
    if isinstance(node, ast.Import):
        names = [a for a in node.names if a.name.startswith(PKG + ".")]
        if not names:
            return None
        parts = [f"{new_name(a.name)}" + (f" as {a.asname}" if a.asname else "") for a in node.names]
        return "import " + ", ".join(parts)
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        pkg = importer_old if is_pkg_old else importer_old.rpartition(".")[0]
        parts = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if not (base == PKG or base.startswith(PKG + ".")):
        return None
    new_pkg = importer_new.rpartition(".")[0]
    groups: dict[str, list[str]] = {}
    for a in node.names:
        full = f"{base}.{a.name}"
        if full in modules:  # a submodule: import it from its new parent, under its old name
            parent, _, leaf = new_name(full).rpartition(".")
            alias = a.asname or (a.name if leaf != a.name else None)
            groups.setdefault(parent, []).append(leaf + (f" as {alias}" if alias else ""))
        else:
            groups.setdefault(new_name(base), []).append(a.name + (f" as {a.asname}" if a.asname else ""))
    statements = []
    for mod, names in groups.items():
        ref = relative(new_pkg, mod) if node.level else mod
        statements.append(f"from {ref} import {', '.join(names)}")
    indent = " " * node.col_offset
    text = ("\n" + indent).join(statements)
    return None if text == ast.unparse(node) else text


def dotted_text(text: str) -> str:
    """Dotted and file-path mentions of moved modules, in prose and strings."""
    keys = sorted(MOVES, key=len, reverse=True)  # one pass, longest first: recipes.cnn before recipes
    dotted = "|".join(re.escape(k) for k in keys)
    text = re.sub(rf"\b{PKG}\.({dotted})(?![\w])", lambda m: f"{PKG}.{MOVES[m[1]]}", text)
    slashed = "|".join(re.escape(k.replace(".", "/")) for k in keys)
    return re.sub(rf"src/{PKG}/({slashed})(/__init__)?\.py\b",
                  lambda m: f"src/{PKG}/{MOVES[m[1].replace('/', '.')].replace('.', '/')}.py", text)


def chars(line: str, byte_offset: int) -> int:
    """The character offset of an AST column (a UTF-8 byte offset) in a line."""
    return len(line.encode()[:byte_offset].decode())


def rewrite_file(path: Path, importer_old: str | None, importer_new: str | None, is_pkg: bool, modules) -> str:
    """The new text of a Python file: its imports rewritten by the AST, the rest by dotted_text()."""
    source = path.read_text()
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if importer_old is None and getattr(node, "level", 0):
                continue
            new = rewrite_import(node, importer_old or "x.y", importer_new or "x.y", is_pkg, modules)
            start = offsets[node.lineno - 1] + chars(lines[node.lineno - 1], node.col_offset)
            end = offsets[node.end_lineno - 1] + chars(lines[node.end_lineno - 1], node.end_col_offset)
            edits.append((start, end, new))
    out, pos = [], 0
    for start, end, new in sorted(edits):
        out.append(dotted_text(source[pos:start]))
        out.append(source[start:end] if new is None else new)
        pos = end
    out.append(dotted_text(source[pos:]))
    return "".join(out)


def main() -> None:
    modules = old_modules()
    texts = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        new_path = target_path(name, modules) if new_name(name) != name else path
        texts[new_path] = (path, rewrite_file(path, name, new_name(name), is_pkg, modules))
    others = [p for d in ("tests", "bench", "scripts") for p in Path(d).rglob("*.py") if p.name != "move_layout.py"]
    for path in others:
        texts[path] = (path, rewrite_file(path, None, None, False, modules))
    for sub, doc in PACKAGES.items():
        (SRC / sub).mkdir(exist_ok=True)
        (SRC / sub / "__init__.py").write_text(f'"""{doc}"""\n')
    for new_path, (old_path, text) in texts.items():
        if new_path != old_path:
            new_path.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["git", "mv", str(old_path), str(new_path)], check=True)
        new_path.write_text(text)
    subprocess.run(["git", "mv", str(SRC / "experiments.toml"), str(SRC / "experiments" / "experiments.toml")],
                   check=True)
    (SRC / "recipes").rmdir() if (SRC / "recipes").exists() and not any((SRC / "recipes").iterdir()) else None
    for path in [Path(p) for p in subprocess.run(["git", "ls-files", "*.md", "*.sh", "*.toml", "*.txt"],
                                                 capture_output=True, text=True, check=True).stdout.split()]:
        path.write_text(dotted_text(path.read_text()))
    subprocess.run(["git", "add", "-A", "src", "tests", "bench", "scripts", "docs"], check=True)


if __name__ == "__main__":
    main()
