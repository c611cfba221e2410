"""The package's shape: imports only go down the layers, and no two files import each other, even
through an import written inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "audiogan"

# Bottom to top: a module may import its own group and the groups of lower layers, never a higher one.
# Groups on one layer are independent of each other. "" is the package root (audiogan/__init__.py).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "files", "xla"),
    ("audio",),
    ("plots",),
    ("datasets", "models"),
    ("config",),
    ("runs",),
    ("training",),
    ("evaluation",),
    ("listening", "teaching"),
    ("notebook", "pipeline"),
    ("sweep",),
    ("cli",),
    ("",),
)


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root`` (a package folder)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """The package's own modules that ``name`` imports anywhere in its file (functions included), with
    the line of each import; ``from a.b import c`` counts as importing ``a.b.c`` when that is a module."""
    top = name.split(".")[0]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        found += [(t, node.lineno) for t in targets if t == top or t.startswith(top + ".")]
    return found


def group_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(group: str, layers=LAYERS) -> int:
    for i, groups in enumerate(layers):
        if group in groups:
            return i
    raise KeyError(group)


def upward_imports(root: Path, layers=LAYERS) -> list[str]:
    """Every import that goes up a layer or sideways to another group of the same layer, or from a
    group the layers do not name."""
    modules = module_files(root)
    problems = []
    for name, path in modules.items():
        mine = group_of(name)
        try:
            here = layer_of(mine, layers)
        except KeyError:
            problems.append(f"{name}: its group {mine!r} is on no layer; add it to LAYERS")
            continue
        for target, line in imports_of(name, path, modules):
            theirs = group_of(target)
            if theirs == mine:
                continue
            there = layer_of(theirs, layers) if any(theirs in g for g in layers) else len(layers)
            if there >= here:
                problems.append(f"{path.name}:{line} ({name}) imports {target}, which is "
                                f"{'above it' if there > here else 'beside it on its layer'}")
    return problems


def cycles(root: Path) -> list[list[str]]:
    """Cycles between files (depth-first search over every import, function-local ones included)."""
    modules = module_files(root)
    edges = {n: sorted({t for t, _ in imports_of(n, p, modules) if t in modules and t != n})
             for n, p in modules.items()}
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == "open":
                loop = stack[stack.index(nxt):]
                start = loop.index(min(loop))  # each cycle told from its first module by name
                found.append(loop[start:] + loop[:start] + [loop[start]])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in edges:
        if node not in state:
            visit(node)
    return found


def test_imports_only_go_down_the_layers():
    assert upward_imports(PACKAGE) == []


def test_no_two_modules_import_each_other():
    assert cycles(PACKAGE) == []


@pytest.fixture
def toy(tmp_path) -> Path:
    """A package of three layers: ``low`` <- ``mid`` <- ``high``."""
    root = tmp_path / "toy"
    (root / "mid").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "low.py").write_text("import os\n")
    (root / "mid" / "__init__.py").write_text("from toy.mid import a\n")
    (root / "mid" / "a.py").write_text("from toy import low\n")
    (root / "mid" / "b.py").write_text("from . import a\n")
    (root / "high.py").write_text("from toy.mid import b\n")
    return root


TOY_LAYERS = (("low",), ("mid",), ("high",), ("",))


def test_the_checks_pass_a_package_that_keeps_its_layers(toy):
    assert upward_imports(toy, TOY_LAYERS) == [] and cycles(toy) == []


def test_an_upward_import_inside_a_function_is_found(toy):
    (toy / "low.py").write_text("def f():\n    from toy import high\n    return high\n")
    assert upward_imports(toy, TOY_LAYERS) == ["low.py:2 (toy.low) imports toy.high, which is above it"]
    assert cycles(toy) == [["toy.high", "toy.mid.b", "toy.mid.a", "toy.low", "toy.high"]]


def test_a_cycle_within_a_layer_is_found_even_through_a_relative_import(toy):
    (toy / "mid" / "a.py").write_text("from toy import low\n\n\ndef g():\n    from .b import x\n")
    assert cycles(toy) == [["toy.mid.a", "toy.mid.b", "toy.mid.a"]]


def test_a_module_outside_every_layer_is_reported(toy):
    (toy / "stray.py").write_text("")
    assert upward_imports(toy, TOY_LAYERS) == ["toy.stray: its group 'stray' is on no layer; add it to LAYERS"]
