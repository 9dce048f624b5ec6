"""DESIGN.md §3: the dependency direction between aslmig's packages, read from the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aslmig

PACKAGE_ROOT = Path(aslmig.__file__).parent
FORBIDDEN_IMPORTS = {
    # the input layer imports no physics and no run configuration
    "bids": ("aslmig.cbf", "aslmig.config", "aslmig.workflows", "aslmig.interfaces", "aslmig.cli"),
    # the simulator is a source of data, not of reports
    "sim": ("aslmig.reports", "aslmig.workflows", "aslmig.interfaces"),
}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import statement in one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN_IMPORTS))
def test_package_imports_respect_the_dependency_direction(package):
    offending = {
        f"{path.name} imports {module}"
        for path in sorted((PACKAGE_ROOT / package).glob("*.py"))
        for module, _ in _imports(path)
        if module.startswith(FORBIDDEN_IMPORTS[package])
    }
    assert offending == set()


def test_no_module_imports_another_modules_private_names():
    offending = {
        f"{path.relative_to(PACKAGE_ROOT)} imports {name} from {module}"
        for path in sorted(PACKAGE_ROOT.rglob("*.py"))
        for module, names in _imports(path)
        if module.startswith("aslmig")
        for name in names
        if name.startswith("_") and not name.startswith("__")
    }
    assert offending == set()
