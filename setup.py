"""The build step pyproject.toml cannot express: docs/ and migrations/ go into the wheel as portal/_bundled.

The running portal reads both (the help pages render docs/*.md, `flask init` runs the migrations);
portal/resources.py finds them there in an installed package, and beside portal/ in a source checkout
(`make run`, `make test`, an editable install), where nothing is copied.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = ("docs", "migrations")


class BuildPyWithBundledFiles(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for name in BUNDLED:
            target = Path(self.build_lib) / "portal" / "_bundled" / name
            for source in sorted(Path(name).rglob("*")):
                if source.is_file() and "__pycache__" not in source.parts:
                    destination = target / source.relative_to(name)
                    self.mkpath(str(destination.parent))
                    self.copy_file(str(source), str(destination))


setup(cmdclass={"build_py": BuildPyWithBundledFiles})
