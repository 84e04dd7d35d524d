"""The product never depends on the tooling: nothing in ``bot`` or ``actions`` imports ``tools``.

``tools`` (stand-ins, benchmarks, evaluation, tuning, screenshots) and ``tests`` may import
``bot``; the other way round would ship measurement code with the assistant. Checked on the
syntax tree, so lazy imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

from bot.settings import PROJECT_ROOT

PRODUCT_PACKAGES = ("bot", "actions")


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_product_never_imports_tools() -> None:
    offences = []
    for package in PRODUCT_PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for line, module in _imported_modules(tree):
                if module == "tools" or module.startswith("tools."):
                    offences.append(f"{path.relative_to(PROJECT_ROOT)}:{line}: {module}")
    assert offences == [], "the product imports the tooling:\n" + "\n".join(offences)


def test_the_check_sees_lazy_imports() -> None:
    tree = ast.parse("def f():\n    from tools.bench import speed\n    import tools.cli\n")
    assert [module for _, module in _imported_modules(tree)] == ["tools.bench", "tools.cli"]


def test_tools_is_a_package_beside_bot() -> None:
    assert (PROJECT_ROOT / "tools" / "__init__.py").is_file()
    assert not any(Path(PROJECT_ROOT / "bot").rglob("tools"))
