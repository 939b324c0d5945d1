"""The compiled twin of the engine: the same rules as the reference, typed Cython ``cdef`` classes.

``ballast_exchange.domain.compiled._engine`` is built from ``_engine.pyx`` by the package's own
build (setuptools + Cython, server/pyproject.toml). Import it through
``ballast_exchange.domain.select_engine()``, which falls back to the reference when it is not
built; importing this package when it is not built raises ``ImportError``.
"""

from ._engine import SOURCE_SHA256, Engine, restore

__all__ = ["SOURCE_SHA256", "Engine", "restore"]
