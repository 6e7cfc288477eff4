"""The build step that pyproject.toml cannot say: the wheel carries the results store and the
tiny checkpoints (``results/*.csv``, ``checkpoints/tiny/*.pt``) as ``wsg/_shipped/``, so that a
chapter opened alone (Colab) finds them after ``pip install`` (see ``wsg/shipped.py``)."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {"results": "*.csv", "checkpoints/tiny": "*.pt"}


class BuildPyWithShipped(build_py):
    def run(self):
        super().run()
        for folder, pattern in SHIPPED.items():
            target = Path(self.build_lib) / "wsg" / "_shipped" / folder
            target.mkdir(parents=True, exist_ok=True)
            for f in sorted((ROOT / folder).glob(pattern)):
                shutil.copy2(f, target / f.name)


setup(cmdclass={"build_py": BuildPyWithShipped})
