"""The one build step pyproject.toml cannot declare: the wheel carries the checkout's recipes/, configs/ and
patches/ inside the package (taosr1_plugins/recipes, ...), so that `taosr1` after a plain `pip install` finds
them (taosr1_plugins/shipped.py). They stay at the top of the checkout, where the project layout has them; an
editable install reads them there, so nothing is copied for one."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("recipes", "configs", "patches")  # as taosr1_plugins/shipped.py names them
HERE = Path(__file__).resolve().parent


class BuildWithShipped(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for name in SHIPPED:
            for source in sorted((HERE / name).rglob("*")):
                relative = source.relative_to(HERE)
                # editor and cache leftovers in a working checkout are not part of a release
                if source.is_dir() or "__pycache__" in relative.parts or any(p.startswith(".") for p in relative.parts):
                    continue
                target = Path(self.build_lib, "taosr1_plugins", relative)
                self.mkpath(str(target.parent))
                self.copy_file(str(source), str(target))  # keeps the mode: the launch scripts stay executable


setup(cmdclass={"build_py": BuildWithShipped})
