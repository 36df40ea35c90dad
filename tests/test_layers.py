"""The import direction of DESIGN §1, checked over every module of every package."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each package may import from the project. Nothing imports upward.
ALLOWED = {
    "core": set(),
    "matching": set(),
    "audit": {"core"},
    "visa": {"audit", "core"},
    "enrollment": {"visa", "audit", "core", "matching"},
    "border": {"enrollment", "visa", "audit", "core", "matching"},
}
# matching/ is the pure search engine: numpy, faiss, pymilvus and the standard library only.
MATCHING_THIRD_PARTY = {"numpy", "faiss", "pymilvus"}


def modules() -> list[Path]:
    return sorted(p for pkg in ALLOWED if (ROOT / pkg).is_dir() for p in (ROOT / pkg).rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_every_package_is_checked() -> None:
    assert {p.relative_to(ROOT).parts[0] for p in modules()} >= {"core", "audit", "border"}


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layers(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0]
    roots = imported_roots(path)
    forbidden = {r for r in roots if r in ALLOWED and r != package and r not in ALLOWED[package]}
    assert forbidden == set(), f"{package} may not import {sorted(forbidden)}"
    if package == "matching":
        outside = roots - MATCHING_THIRD_PARTY - set(sys.stdlib_module_names) - {"matching"}
        assert outside == set(), f"matching may import only numpy, faiss, pymilvus: {outside}"


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from border import app\nimport enrollment.service\n")
    assert imported_roots(bad) == {"border", "enrollment"}
