"""The engine and the workloads never import Textual: the boundary is enforced, not hoped for."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUARDED = [ROOT / "cpviz" / "engine", ROOT / "cpviz" / "workloads"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
            if node.module == "cpviz":
                names.update(f"cpviz.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_textual_import_in_engine_or_workloads_source() -> None:
    offenders = []
    files = [p for d in GUARDED for p in d.rglob("*.py")]
    assert files, "found no engine sources: the guard would pass vacuously"
    for path in files:
        imported = _imports(path)
        if "textual" in imported or any(n.startswith("cpviz.app") for n in imported):
            offenders.append(str(path.relative_to(ROOT)))
        if any(n.startswith("cpviz.widgets") or n == "cpviz.widgets" for n in imported):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_importing_the_engine_does_not_load_textual() -> None:
    modules = sorted(
        "cpviz." + ".".join(p.relative_to(ROOT / "cpviz").with_suffix("").parts)
        for d in GUARDED
        for p in d.rglob("*.py")
        if p.name != "__init__.py"
    )
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == ""
