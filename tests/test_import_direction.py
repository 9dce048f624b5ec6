"""DESIGN.md §3: the input layer imports no physics and no run configuration."""

from __future__ import annotations

import ast
from pathlib import Path

import aslmig.bids

FORBIDDEN = ("aslmig.cbf", "aslmig.config", "aslmig.workflows", "aslmig.interfaces", "aslmig.cli")


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_bids_package_imports_no_physics_and_no_config():
    folder = Path(aslmig.bids.__file__).parent
    offending = {
        f"{path.name} imports {name}"
        for path in sorted(folder.glob("*.py"))
        for name in _imported_modules(path)
        if name.startswith(FORBIDDEN)
    }
    assert offending == set()
