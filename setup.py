"""Ship web/ (templates and vendored static files) inside the wheel as feedback/_web."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithWeb(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "feedback" / "_web"
        shutil.copytree(Path(__file__).parent / "web", target, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithWeb})
