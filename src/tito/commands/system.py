"""`tito system doctor`: what this machine and workspace look like, in one table.

`diagnose()` is a plain function returning (item, verdict, detail) rows; verdict is True (fine),
False (a problem to fix) or None (informational / optional).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import sys
from typing import Annotated, Optional
from pathlib import Path

import typer
from rich.table import Table

from tito import ui
from tito.ui import escape
from tito.errors import TitoError

app = typer.Typer(help="About this machine: Python, NumPy and BLAS, workspace, data sets.",
                  no_args_is_help=True)
out = ui.console
Row = tuple[str, Optional[bool], str]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def blas_info() -> str:
    """Which BLAS NumPy uses: threadpoolctl if installed, else NumPy's build configuration."""
    if importlib.util.find_spec("threadpoolctl"):
        from threadpoolctl import threadpool_info

        libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if libs:
            return ", ".join(f"{i.get('internal_api')} {i.get('version') or ''} "
                             f"({i.get('num_threads')} threads)".replace("  ", " ") for i in libs)
    import numpy as np

    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        return "unknown (pip install threadpoolctl for details)"


def _workspace_rows(workspace: Path | None) -> list[Row]:
    from tito import activation, registry, state
    from tito.workspace import find_workspace

    try:
        ws = find_workspace(workspace)
    except TitoError as e:  # a problem only if the user named a workspace
        return [("workspace", False if workspace else None,
                 f"{e.message} ({e.hint})" if e.hint else e.message)]
    rows: list[Row] = [("workspace", True, str(ws.root))]
    is_active, line = activation.describe(ws.root)
    rows.append(("import tinytorch", is_active, line))
    try:
        done = ws.completed()
        achieved = state.get_achievements(ws.root)
    except TitoError as e:
        return rows + [("workspace state", False, e.message)]
    built = registry.built_modules()
    rows.append(("modules complete", True, f"{len([m for m in built if m.id in done])}/{len(built)}"
                 + (f" (next: {registry.next_module(done)})" if registry.next_module(done) else "")))
    missing_exports = [m.file_name for m in built if m.id in done and not ws.exported_file(m).exists()]
    if missing_exports:
        rows.append(("exports", False, "recorded complete but missing from tinytorch/: "
                     + ", ".join(missing_exports)))
    rows.append(("milestones achieved", True, ", ".join(sorted(achieved)) or "none yet"))
    return rows


def _data_rows() -> list[Row]:
    try:
        from tito import data
    except Exception as e:  # tinytorch.datasets missing or broken
        return [("data sets", None, f"tinytorch.datasets not importable ({type(e).__name__}: {e})")]
    try:
        rows = data.summary()
    except Exception as e:
        return [("data sets", False, f"could not inspect the data folder: {e}")]
    return [(f"data: {r.name}", r.status == "ready" or None,
             f"{r.status}{'' if r.exact in (None, True) else ' (not the exact official files)'}"
             f" - {r.where}") for r in rows]


def diagnose(workspace: Path | None = None) -> list[Row]:
    """Everything `tito system doctor` prints, as rows."""
    py_ok = sys.version_info >= (3, 10)
    rows: list[Row] = [
        ("python", py_ok, f"{platform.python_version()} ({sys.executable})"
         + ("" if py_ok else " - TinyTorch needs Python 3.10 or newer")),
        ("platform", None, f"{platform.system()} {platform.machine()}"),
    ]
    np_version = _version("numpy")
    rows.append(("numpy", np_version is not None, np_version or "not installed: pip install numpy"))
    if np_version:
        rows.append(("BLAS", None, blas_info()))
    try:
        from tito.workspace import Sources

        rows.append(("tinytorch", True, f"{_version('tinytorch') or '?'} (reference at "
                     f"{Sources.installed().reference})"))
    except TitoError as e:
        rows.append(("tinytorch", False, e.message))
    for dist, why in REQUIRED:  # a learner's install cannot work without these: ✗ with the fix
        v = _version(dist) if importlib.util.find_spec(dist.replace("-", "_")) else None
        rows.append((dist, v is not None, v or f"missing - needed for {why}: pip install {dist}"))
    for dist, why in OPTIONAL:
        v = _version(dist)
        rows.append((dist, True if v else None, v or f"not installed ({why})"))
    return rows + _workspace_rows(workspace) + _data_rows()


REQUIRED = (("matplotlib", "the milestones' plots"), ("pytest", "running the module checks"),
            ("hypothesis", "the module checks' property tests"),
            ("jupytext", "the lesson notebooks (.py/.ipynb pairs)"), ("rich", "tito's output"),
            ("typer", "tito's commands"), ("platformdirs", "the data set cache"))
OPTIONAL = (("ipykernel", "optional: a Jupyter/VS Code kernel for the lessons - pip install "
                          "ipykernel"),
            ("torch", "optional: parity tests and benchmarks - pip install torch --index-url "
                      "https://download.pytorch.org/whl/cpu"))


@app.command()
def doctor(workspace: Annotated[Optional[Path], typer.Option(
        "--workspace", "-w", help="The workspace to inspect (default: found from here).")] = None
           ) -> None:
    """Python, NumPy and BLAS, the workspace and its state, data sets, optional PyTorch."""
    table = Table(title="tito system doctor", title_justify="left")
    for col in ("", "item", "detail"):
        table.add_column(col, overflow="fold")
    rows = diagnose(workspace)
    mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: "[dim]·[/]"}
    for item, verdict, detail in rows:
        table.add_row(mark[verdict], escape(item), escape(detail))
    out.print(table)
    bad = [item for item, verdict, _ in rows if verdict is False]
    if bad:
        out.print(f"[red]{len(bad)} problem(s):[/] {', '.join(bad)}")
        raise typer.Exit(1)
