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


def test_the_workmesh_symlinks_mirror_the_package_dir_mapping():
    """mypy and IDEs resolve workmesh.* through workmesh/ (README, Types and IDEs)."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    links = {"workmesh." + link.name: link.resolve() for link in (REPO / "workmesh").iterdir() if link.is_symlink()}
    assert links == {name: (REPO / folder).resolve() for name, folder in setuptools["package-dir"].items()}


def test_every_top_level_package_ships_py_typed():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    for name, folder in setuptools["package-dir"].items():
        assert (REPO / folder / "py.typed").is_file(), folder
        assert "py.typed" in setuptools["package-data"][name], name
