"""Builds shmkit's small C extension (atomics and futexes) from source.

If the extension cannot be compiled (no C compiler), the install goes on
without it and ``import shmkit`` then says what is missing and how to fix it.
"""
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class optional_build_ext(build_ext):
    def run(self):
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - report any compiler failure
            self._warn(e)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001
            self._warn(e)

    @staticmethod
    def _warn(e):
        sys.stderr.write(
            "\nshmkit: WARNING: the C extension shmkit._native could not be built (%s).\n"
            "shmkit needs it for atomics and futexes; import shmkit will fail until it is built.\n"
            "Install a C compiler and the Python headers (Debian: apt-get install gcc python3-dev)\n"
            "and run pip install again.\n\n" % e
        )


setup(
    ext_modules=[
        Extension(
            "shmkit._native",
            sources=["src/shmkit/_native.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall"],
        )
    ],
    cmdclass={"build_ext": optional_build_ext},
)
