"""The domain imports neither the web framework nor the queue; adapters stay in their lane."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "pipeline": {"falcon", "celery", "kombu", "redis", "api", "workers", "ops"},
    "api": {"celery", "kombu", "redis", "workers", "ops"},
    "workers": {"falcon", "api", "ops"},
    "ops": {"falcon", "api"},
}
# Composition roots wire adapters together, so they may import across layers.
COMPOSITION_ROOTS = {"api/wsgi.py", "ops/serve.py"}
# The engine core is pure: no database either. Only the store may use SQLAlchemy.
PURE_SCIM = {"sqlalchemy", "tenacity"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_in_their_layer(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
        if str(path.relative_to(ROOT)) not in COMPOSITION_ROOTS
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_protocol_engine_is_pure() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & PURE_SCIM)
        for path in (ROOT / "pipeline" / "scim").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_layering_check_sees_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import falcon\nfrom celery import Celery\nfrom . import sibling\n")
    assert imported_roots(module) == {"falcon", "celery"}


def test_the_cli_loads_without_the_optional_extras() -> None:
    """`scimflow serve` runs on a runtime-only install: no driver, broker or server imported."""
    probe = (
        "import sys, ops.cli, ops.serve; "
        "print(sorted({'psycopg', 'celery', 'kombu', 'gunicorn', 'redis'} & set(sys.modules)))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, cwd=ROOT).stdout.strip()
    assert loaded == "[]"
