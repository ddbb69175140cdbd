"""The layers of DESIGN.md, enforced rather than hoped for.

* The engine (events, the Model, the channel's viewer end, recordings) imports no workload, no
  agent code, no command line and no screen: the catalogue is passed in.
* What runs inside the observed process (cpviz.agent) never loads Textual, and neither do the
  workloads it runs: the watched program must not pay for the screen.
* Workloads know only the run contract (cpviz.engine.contract), never the lab that runs them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT

PACKAGE = ROOT / "cpviz"

#: Layer → module prefixes it must never import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "engine": ("textual", "cpviz.workloads", "cpviz.agent", "cpviz.cli", "cpviz.app",
               "cpviz.widgets", "cpviz.talk", "cpviz.record_cli", "cpviz.proof",
               "cpviz.screenshot"),
    "agent": ("textual", "rich", "cpviz.workloads", "cpviz.cli", "cpviz.app", "cpviz.widgets",
              "cpviz.talk", "cpviz.record_cli", "cpviz.proof", "cpviz.screenshot",
              "cpviz.engine.model", "cpviz.engine.observed", "cpviz.engine.sampler"),
    "workloads": ("textual", "rich", "cpviz.cli", "cpviz.app", "cpviz.widgets", "cpviz.talk",
                  "cpviz.agent.lab", "cpviz.agent.main", "cpviz.engine.observed"),
}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, absolute, at any depth (lazy imports count too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _hits(imported: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(n for n in imported for f in forbidden if n == f or n.startswith(f + "."))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"found no sources in cpviz/{layer}: the guard would pass vacuously"
    offenders = {
        str(path.relative_to(ROOT)): hits
        for path in files
        if (hits := _hits(_imports(path), FORBIDDEN[layer]))
    }
    assert offenders == {}


def test_the_guard_sees_a_lazy_import() -> None:
    """The check must catch an import inside a function, where layering bugs like to hide."""
    source = ROOT / "tests" / "_boundary_probe.py"
    source.write_text("def f() -> None:\n    from cpviz.app import CpvizApp\n")
    try:
        assert _hits(_imports(source), ("cpviz.app",)) == ["cpviz.app", "cpviz.app.CpvizApp"]
    finally:
        source.unlink()


def test_the_observed_side_runs_without_loading_textual() -> None:
    """Import everything the observed process can run, in a fresh interpreter: no Textual."""
    modules = sorted(
        "cpviz." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
        for layer in ("agent", "workloads", "engine")
        for p in (PACKAGE / layer).rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    )
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "import cpviz.workloads.registry as r; r.lab_catalogue()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual',))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
        timeout=60,
    )
    assert out.stdout.strip() == ""


def test_the_embedded_agent_needs_only_the_standard_library() -> None:
    """What ``cpviz.agent.install()`` and ``cpviz -- python app.py`` load into someone's
    program: the standard library and cpviz's own stdlib-only modules, nothing installed beside
    them (no psutil, no anyio), since the program's interpreter may have nothing else."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import cpviz.agent\n"
        "cpviz.agent.install\n"
        "import cpviz.agent.embed, cpviz.agent.flight, cpviz.agent.probes, cpviz.agent.sockets\n"
        "import cpviz.agent.boot, cpviz.agent.trio_probe\n"
        "tops = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "std = sys.stdlib_module_names\n"
        "print(','.join(sorted(t for t in tops if t != 'cpviz' and t not in std\n"
        "    and t.lstrip('_') not in std and not t.startswith('_sysconfigdata'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
        timeout=60,
    )
    assert out.stdout.strip() == ""
