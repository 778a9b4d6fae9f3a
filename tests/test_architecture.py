"""Imports point one way: webapp -> recommender <- jobs. recommender has no edge concerns."""
import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

FORBIDDEN = {
    "recommender": {"webapp", "jobs", "flask", "argparse", "tqdm"},
    "webapp": {"jobs"},
    "jobs": {"webapp"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package):
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"{package} has no modules"
    wrong = {f"{f.relative_to(REPO)} imports {name}" for f in files for name in _imports(f) & FORBIDDEN[package]}
    assert not wrong, sorted(wrong)


def test_recommender_never_prints():
    offenders = [str(f.relative_to(REPO)) for f in (REPO / "recommender").rglob("*.py")
                 if any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"
                        for n in ast.walk(ast.parse(f.read_text(encoding="utf-8"))))]
    assert offenders == []
