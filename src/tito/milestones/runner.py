"""The milestone subprocess: runs one part on one `tinytorch` and reports JSON lines.

    python -m tito.milestones.runner 03 2 [--quick] [--seed S] --out DIR [--root WS] [--expect PKG]
                                     [--options JSON]
    python -m tito.milestones.runner --check-imports tensor,layers [--root WS] [--expect PKG]

`--root WS` puts the learner's workspace first on sys.path, so `import tinytorch` is THEIR package;
`--expect PKG` is the package folder tinytorch must be imported from (checked, never assumed).
`--options JSON` is a dict of part-specific settings (milestone 05: prompt, temperature), ctx.options.

Stdout carries only protocol lines, one JSON object each (anything the learner's code prints goes
to stderr):

    {"progress": {"epoch": 3, "epochs": 20, "loss": 0.41, ...}}     while training
    {"log": "..."}  {"warning": "..."}  {"code": "def f(x): ..."}   (shown syntax-highlighted)
    {"metrics": {...}, "plots": [...], "notes": [...], "data": {...}}   the part finished
    {"error": "ValueError: ...", "traceback": "...", "module": "03_layers"}   learner's code raised
    {"nan": "...", "suspects": ["04_losses", ...]}                  the loss became NaN/inf
    {"data_error": "...", "hint": "..."}                            a data set is missing or corrupt
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
import warnings
from pathlib import Path

from tito import registry
from tito.milestones.common import NonFiniteLoss, RunContext, UsageError, dumps, seed_all


# ---------------------------------------------------------------------------------------------
# Tracebacks trimmed to the learner's files
# ---------------------------------------------------------------------------------------------
def _module_for(filename: str, package: Path) -> registry.Module | None:
    """The course module a file belongs to, if it is one of the package's module files."""
    path = Path(filename).resolve()
    if path.parent != package:
        return None
    return next((m for m in registry.MODULES if m.file_name == path.name), None)


def trim_traceback(exc: BaseException, package: Path) -> tuple[str, registry.Module | None]:
    """(the frames in the learner's module files + the milestone line that called them, culprit).

    The culprit is the module of the innermost learner frame: where the exception was raised.
    Without any learner frame (the error surfaced in the milestone script), the last three frames.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [i for i, f in enumerate(frames) if _module_for(f.filename, package)]
    if mine:
        keep = [frames[mine[0] - 1]] if mine[0] > 0 else []  # the milestone line that called in
        keep += [frames[i] for i in mine]
        culprit = _module_for(frames[mine[-1]].filename, package)
    else:
        keep, culprit = list(frames[-3:]), None
    missing = getattr(exc, "name", None) or ""
    if isinstance(exc, ModuleNotFoundError) and missing.startswith("tinytorch."):
        name = missing.split(".")[1]  # a module not exported yet: that is the one to complete
        culprit = next((m for m in registry.MODULES if m.name == name), culprit)
        keep = []  # where it was imported from does not matter
    lines = traceback.format_list(keep)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip(), culprit


def _suspect_keys(names) -> list[str]:
    out = []
    for n in names:
        try:
            out.append(registry.get_module(n).key)
        except Exception:  # noqa: BLE001 - an unknown name is shown as given
            out.append(str(n))
    return out


# ---------------------------------------------------------------------------------------------
# The two jobs
# ---------------------------------------------------------------------------------------------
def _import_tinytorch(expect: str | None, ctx: RunContext):
    import tinytorch

    where = Path(list(tinytorch.__path__)[0]).resolve()
    if expect and where != Path(expect).resolve():
        ctx.emit(error=f"ImportError: tinytorch was imported from {where}, expected {expect}",
                 traceback="", module=None)
        sys.exit(3)
    return where


def check_imports(names: list[str], expect: str | None, ctx: RunContext) -> int:
    """Import tinytorch.<name> for each name; one line {"imports": [{name, ok, error}]}."""
    package = _import_tinytorch(expect, ctx)
    results = []
    for name in names:
        try:
            importlib.import_module(f"tinytorch.{name}")
            results.append({"name": name, "ok": True, "error": ""})
        except BaseException as e:  # noqa: BLE001 - SyntaxError, ImportError, anything at import
            text, _ = trim_traceback(e, package)
            results.append({"name": name, "ok": False,
                             "error": "".join(traceback.format_exception_only(type(e), e)).strip(),
                             "traceback": text})
    ctx.emit(imports=results)
    return 0 if all(r["ok"] for r in results) else 1


def run_part(ms: registry.Milestone, part: registry.Part, expect: str | None,
             ctx: RunContext) -> int:
    package = _import_tinytorch(expect, ctx)
    try:
        from tinytorch.datasets import DatasetError
    except ImportError:  # a package without the support file: no data error can come from it
        DatasetError = ()  # noqa: N806
    try:
        seed_all(ctx.seed)
        fn = getattr(importlib.import_module(part.script), part.entry)
        metrics = fn(ctx)
        if not isinstance(metrics, dict):
            raise TypeError(f"{part.script}.{part.entry} returned {type(metrics).__name__}, "
                            "not a dict")
    except NonFiniteLoss as e:
        ctx.emit(nan=str(e), suspects=_suspect_keys(e.suspects), notes=ctx.notes)
        return 1
    except (DatasetError, UsageError) as e:  # shown with its hint, no culprit module
        ctx.emit(data_error=getattr(e, "message", str(e)), hint=getattr(e, "hint", None))
        return 1
    except Exception as e:  # noqa: BLE001 - any error in the learner's code is reported, not raised
        text, culprit = trim_traceback(e, package)
        ctx.emit(error="".join(traceback.format_exception_only(type(e), e)).strip(),
                 traceback=text, module=culprit.key if culprit else None)
        return 1
    for w in ctx.witnesses:
        for problem in w.problems:
            ctx.note(problem)
    record = {"milestone": ms.id, "part": part.number, "quick": ctx.quick, "seed": ctx.seed,
              "metrics": metrics, "data": ctx.provenance, "notes": ctx.notes}
    (ctx.out_dir / "metrics.json").write_text(dumps(record) + "\n", encoding="utf-8")
    ctx.emit(metrics=metrics, plots=ctx.plots, notes=ctx.notes, data=ctx.provenance)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tito.milestones.runner")
    ap.add_argument("milestone", nargs="?")
    ap.add_argument("part", nargs="?", default="1")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=".")
    ap.add_argument("--root", help="the workspace whose tinytorch/ package to use")
    ap.add_argument("--expect", help="the folder tinytorch must be imported from")
    ap.add_argument("--check-imports", help="comma-separated module names to import and report")
    ap.add_argument("--options", default="{}", help="part-specific settings as a JSON object")
    args = ap.parse_args(argv)

    # Protocol lines keep the real stdout; everything else printed (learner code, C libraries)
    # goes to stderr from here on.
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    sys.stdout.flush()
    os.dup2(2, 1)
    if args.root:
        sys.path.insert(0, str(Path(args.root).resolve()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(milestone=args.milestone or "", part=int(args.part), quick=args.quick,
                     seed=args.seed, out_dir=out, stream=proto, options=json.loads(args.options))

    def show(message, category, filename, lineno, file=None, line=None):
        ctx.emit(warning=f"{category.__name__}: {message}")

    warnings.showwarning = show
    if args.check_imports is not None:
        names = [n for n in args.check_imports.split(",") if n]
        return check_imports(names, args.expect, ctx)
    ms = registry.get_milestone(args.milestone)
    return run_part(ms, ms.part(args.part), args.expect, ctx)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the parent stops us; it records nothing
        sys.exit(130)
