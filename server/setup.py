"""Build of the compiled engine twin (docs/adr/0008-compiled-engine.md).

Everything else about the package is declared in pyproject.toml; this file only adds the Cython
extension ``ballast_exchange.domain.compiled._engine``. The extension is optional: without a C
compiler the package still installs and the server runs the reference engine (and says so).
The SHA-256 of the .pyx is compiled in, so a stale build is recognised and not used.
"""

import hashlib
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

PYX = "src/ballast_exchange/domain/compiled/_engine.pyx"
SOURCE_SHA256 = hashlib.sha256(Path(__file__).parent.joinpath(PYX).read_bytes()).hexdigest()

engine = Extension(
    "ballast_exchange.domain.compiled._engine",
    [PYX],
    define_macros=[("BALLAST_SOURCE_SHA256", f'"{SOURCE_SHA256}"')],
    extra_compile_args=["-O2"],
    optional=True,
)

setup(
    ext_modules=cythonize(
        [engine],
        build_dir="build/cython",
        compiler_directives={"language_level": "3"},
        quiet=True,
    )
)
