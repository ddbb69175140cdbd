"""Every file the package reads at run time is shipped with it, not only present in a checkout."""

from __future__ import annotations

import tomllib

from tests.paths import ROOT


def test_package_data_covers_every_data_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["cpviz"]
    package = ROOT / "cpviz"
    data = [
        p.relative_to(package).as_posix()
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert data, "expected data files (styles, the built-in deck)"
    # Globbed the way setuptools does: ``*`` stays within one folder.
    shipped = {p.relative_to(package).as_posix() for pat in patterns for p in package.glob(pat)}
    assert sorted(set(data) - shipped) == []
