"""The wheel holds every package of the tree: `pyproject.toml` lists them one by one."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def listed_packages() -> set[str]:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    return set(setuptools["packages"])


def tree_packages() -> set[str]:
    """Every folder with an `__init__.py` under the folders the package maps, as a name."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    found: set[str] = set()
    for name, folder in setuptools["package-dir"].items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base).parts
            found.add(".".join((name, *relative)))
    return found


def test_every_package_of_the_tree_is_in_the_wheel() -> None:
    assert tree_packages() - listed_packages() == set()


def test_the_wheel_lists_no_package_the_tree_lacks() -> None:
    assert listed_packages() - tree_packages() == set()
