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
COMPOSITION_ROOTS = {"api/wsgi.py", "api/console_wsgi.py", "ops/serve.py"}
# The benchmark's baseline is a bare Falcon app by definition; only its own server loads it.
BENCH_BASELINE = "ops/bench/baseline_app.py"
# The protocol, the commands, the apply and the event model are pure: standard library and
# each other only, no database, no store, no services, however deep the imports go.
PURE_MODULES = ("pipeline/scim", "pipeline/commands.py", "pipeline/apply.py", "pipeline/errors.py",
                "pipeline/login_rules.py",
                "pipeline/ports.py", "pipeline/events/model.py")

PACKAGES = ("pipeline", "api", "workers", "ops")


def absolute_imports(path: Path) -> set[str]:
    """Every module name a file imports absolutely, anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def layer_of(name: str) -> str:
    """`scimflow.pipeline.services.drain` -> `pipeline`; `sqlalchemy.orm` -> `sqlalchemy`."""
    parts = name.split(".")
    return parts[1] if parts[0] == "scimflow" and len(parts) > 1 else parts[0]


def imported_roots(path: Path) -> set[str]:
    return {layer_of(name) for name in absolute_imports(path)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_in_their_layer(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
        if str(path.relative_to(ROOT)) not in {*COMPOSITION_ROOTS, BENCH_BASELINE}
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def impure_imports(path: Path) -> set[str]:
    """What a module imports, directly or through project modules, beyond the standard
    library and the pure modules themselves."""
    seen: set[Path] = set()
    found: set[str] = set()
    pending = [path]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in absolute_imports(current):
            root = name.split(".")[0]
            if root in sys.stdlib_module_names or root == "__future__":
                continue
            target = _source_of(name)
            if target is None or not _is_pure(target):
                found.add(name)
            else:
                pending.append(target)
    return found


def _source_of(name: str) -> Path | None:
    """The file of a project module (`scimflow.pipeline.x` or `scimflow.pipeline.x.Name`)."""
    parts = name.split(".")
    if parts[0] != "scimflow":
        return None
    for end in (len(parts), len(parts) - 1):
        base = ROOT.joinpath(*parts[1:end])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _is_pure(path: Path) -> bool:
    relative = str(path.relative_to(ROOT))
    return any(relative == pure or relative.startswith(pure + "/") for pure in PURE_MODULES)


def pure_sources() -> list[Path]:
    return sorted(path for path in (ROOT / "pipeline").rglob("*.py") if _is_pure(path))


def test_the_protocol_commands_and_apply_are_pure() -> None:
    offenders = {str(path.relative_to(ROOT)): sorted(impure_imports(path))
                 for path in pure_sources()}
    assert {k: v for k, v in offenders.items() if v} == {}
    assert ROOT / "pipeline" / "apply.py" in pure_sources()


def test_the_purity_check_sees_a_store_import_however_deep(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import json\nfrom scimflow.pipeline.commands import Command\n"
                      "from scimflow.pipeline.store.journal import Entry\nimport sqlalchemy\n")
    assert impure_imports(module) == {"scimflow.pipeline.store.journal", "sqlalchemy"}


def test_layering_check_sees_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import falcon\nfrom celery import Celery\nfrom . import sibling\n"
                      "from scimflow.api import app\n")
    assert imported_roots(module) == {"falcon", "celery", "api"}


def test_the_project_is_imported_only_as_scimflow() -> None:
    """A bare `import pipeline` would load a second copy of a module (or another distribution's
    `pipeline`/`ops` package) once installed: every project import goes through `scimflow.`."""
    folders = (*PACKAGES, "tests", "benchmarks")
    sources = [path for folder in folders for path in (ROOT / folder).rglob("*.py")]
    bare = {
        str(path.relative_to(ROOT)): sorted(
            name for name in absolute_imports(path) if name.split(".")[0] in PACKAGES
        )
        for path in sources
    }
    assert {k: v for k, v in bare.items() if v} == {}


def test_the_cli_loads_without_the_optional_extras() -> None:
    """`scimflow serve` runs on a runtime-only install: no driver, broker or server imported."""
    probe = (
        "import sys, scimflow.ops.cli, scimflow.ops.serve; "
        "print(sorted({'psycopg', 'celery', 'kombu', 'gunicorn', 'redis'} & set(sys.modules)))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, cwd=ROOT).stdout.strip()
    assert loaded == "[]"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return "scimflow." + ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules a file imports, anywhere in it (lazy imports count too)."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        imported.update(name for name in names if name in modules)
    return imported


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (found := visit(target, [*path, target])):
                return found
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module, [module])):
            return found
    return None


def test_no_two_modules_import_each_other() -> None:
    """Not even lazily: a circle means two modules share a seam that should be cut."""
    paths = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    modules = set(paths)
    graph = {name: project_imports(path, modules) - {name} for name, path in paths.items()}
    assert import_cycle(graph) is None


def test_the_cycle_check_finds_a_cycle() -> None:
    assert import_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert import_cycle({"a": {"b"}, "b": set()}) is None
