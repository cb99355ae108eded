"""scimflow: an asynchronous SCIM 2.0 provisioning pipeline.

The distribution installs one import package, ``scimflow``; its subpackages are the project's
top-level folders (``pipeline``, ``api``, ``workers``, ``ops``), mapped in ``pyproject.toml``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scimflow")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
