"""The import rule of docs/architecture.md ("Modules, by layer"), checked on every import in bot/.

A package may import packages of lower layers and its own package, nothing else; lazy imports
inside functions count too, only imports for type checking do not (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Highest first. Packages on one line form one layer and may not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("bot.__main__",),
    ("bot.api", "bot.cli", "bot.run_commands", "bot.model_commands"),
    ("bot.console",),
    ("bot.runtime", "bot.stack"),
    ("bot.modelbuilds",),
    ("bot.training",),
    ("bot.channels",),
    ("bot.scheduler",),
    ("bot.core",),
    ("bot.feedback", "bot.notices"),
    ("bot.privacy",),
    ("bot.identity", "bot.nlu", "bot.alerts"),
    ("bot.tickets",),
    ("bot.outbox",),
    ("bot.staff",),
    ("bot.kb",),
    ("bot.observability",),
    ("bot.store",),
    ("bot.texts", "bot.http_security", "bot.settings"),
]
RANK = {package: len(LAYERS) - i for i, line in enumerate(LAYERS) for package in line}


def _package(module: str) -> str | None:
    parts = module.split(".")
    for n in (2, 1):
        if ".".join(parts[:n]) in RANK:
            return ".".join(parts[:n])
    return None


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text("utf-8"))
    skip = _type_checking_lines(tree)
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def _violations() -> list[str]:
    problems = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if "migrations" in path.parts or path == ROOT / "bot" / "__init__.py":
            continue  # Alembic's scripts load every model on purpose; bot/__init__.py is empty
        source = _package(_module_name(path))
        assert source is not None, f"{path.relative_to(ROOT)} belongs to no layer: add its package to LAYERS"
        for line, target_module in _imports(path):
            target = _package(target_module)
            if target is None or target == source:
                continue
            if RANK[target] >= RANK[source]:
                problems.append(f"{path.relative_to(ROOT)}:{line} ({source}) imports {target_module} ({target})")
    return sorted(set(problems))


def test_imports_run_down_the_layers_only() -> None:
    assert _violations() == []


@pytest.mark.parametrize("package", sorted(RANK))
def test_every_layer_exists(package: str) -> None:
    relative = Path(*package.split("."))
    assert (ROOT / relative).is_dir() or (ROOT / relative.with_suffix(".py")).is_file()
