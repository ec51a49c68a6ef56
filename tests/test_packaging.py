"""Every package folder is listed in pyproject.toml, so a non-editable install (the image) ships it."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed_in_pyproject():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {}
    for name, folder in setuptools["package-dir"].items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder).parts
            folders[".".join((name, *relative))] = init.parent
    assert sorted(folders) == sorted(setuptools["packages"])
