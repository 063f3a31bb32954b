"""The library never pulls in streamlit: only workbench_ui imports it (notebooks and the CLI stay light)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "workbench"
# every module of the library, found on disk so a new one cannot slip past the checks below
LIBRARY_MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts[:-1] if p.name == "__init__.py"
             else p.relative_to(ROOT).with_suffix("").parts)
    for p in PACKAGE.rglob("*.py"))


def test_importing_the_library_does_not_load_streamlit():
    code = (
        "import importlib, json, sys\n"
        f"for name in {LIBRARY_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = [m for m in sys.modules if m == 'streamlit' or m.startswith('streamlit.')]\n"
        "print(json.dumps(sorted(loaded)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(LIBRARY_MODULES) > 50
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def _imports(path: Path, *, module_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in _walk(tree, module_level_only):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _walk(node: ast.AST, module_level_only: bool):
    for child in ast.iter_child_nodes(node):
        if module_level_only and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        yield child
        yield from _walk(child, module_level_only)


def _is_streamlit(name: str) -> bool:
    return name == "streamlit" or name.startswith("streamlit.")


def test_only_the_ui_package_imports_streamlit():
    # The library (workbench/) is free of streamlit and of the app's widgets (workbench_ui/, the one package that
    # imports streamlit). `workbench serve` has to start the server, so the CLI may import streamlit inside the
    # function that serves; nothing else in workbench/ may import either at all.
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        names = _imports(path, module_level_only=path == PACKAGE / "cli.py")
        if any(_is_streamlit(n) or n.split(".")[0] == "workbench_ui" for n in names):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == [], f"streamlit or workbench_ui imported by the library: {offenders}"


def test_pages_hold_no_sql():
    # Pages read widgets, call the library and render; a query string in a page means logic leaked into it.
    sql = re.compile(r"\bSELECT\b[^\n]*\bFROM\b|\bINSERT INTO\b|\bUPDATE \w+ SET\b|\bDELETE FROM\b")
    for path in sorted((ROOT / "app_pages").glob("*.py")) + [ROOT / "app.py"]:
        names = _imports(path)
        assert not {"duckdb", "workbench.store"} & names, f"{path.name} talks to the store directly"
        assert not sql.search(path.read_text(encoding="utf-8")), f"{path.name} contains SQL"


def test_pages_never_render_trace_text_as_html():
    for path in sorted((ROOT / "app_pages").glob("*.py")) + [ROOT / "app.py"]:
        assert "unsafe_allow_html" not in path.read_text(encoding="utf-8"), path.name
