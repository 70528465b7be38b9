"""`tito dev verify`: prove the course is sound, for maintainers and CI.

For every built module:
  * the reference passes its checks, staged exactly as a learner's package would be when they
    complete it (support files + the modules it depends on + itself) - so a check that quietly
    needs a later module is caught;
  * the stripped module FAILS every one of its checks (a check passing on a stub is vacuous);
  * the stripped file imports, and no solution line leaks into it;
  * it has a reference file with solution regions and a check file, and the reference is a lesson
    notebook in the course's format (docs/MODULE_FORMAT.md: cells, nbgrader metadata, length).
And the registry is consistent. The pytest runs go in parallel (default: 2 at a time).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tito import checkrun, notebooks, registry
from tito.errors import TitoError
from tito.registry import Module
from tito.strip import StripError, leaks, regions
from tito.workspace import Sources


@dataclass
class ModuleResult:
    module: Module
    regions: int = 0
    reference: str = "-"  # checks passed on the reference, e.g. "42/42"
    stub: str = "-"  # checks failed on the stub, e.g. "42/42"
    vacuous: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class VerifyReport:
    modules: list[ModuleResult]
    problems: list[str]  # registry-level problems

    @property
    def all_problems(self) -> list[str]:
        return self.problems + [f"{r.module}: {p}" for r in self.modules for p in r.problems]

    @property
    def vacuous(self) -> list[str]:
        return [f"{r.module}: {name}" for r in self.modules for name in r.vacuous]

    @property
    def ok(self) -> bool:
        return not self.all_problems


def _files(src: Sources, m: Module, stub: bool) -> dict:
    """Support files + reference prerequisites + the module itself (stripped if `stub`)."""
    files: dict = {p.name: p for p in src.support_files()}
    for dep in registry.all_prereqs(m):
        files[dep.file_name] = src.reference_file(dep)
    files[m.file_name] = src.stripped_text(m) if stub else src.reference_file(m)
    return files


def _static(src: Sources, res: ModuleResult) -> bool:
    """File-level facts; returns False when the module cannot be run at all."""
    m = res.module
    if not src.check_file(m).exists():
        res.problems.append(f"no check file ({src.check_file(m)})")
    ref = src.reference_file(m)
    if not ref.exists():
        res.problems.append(f"no reference file ({ref})")
        return False
    text = ref.read_text(encoding="utf-8")
    try:
        res.regions = len(regions(text, str(ref)))
        stripped = src.stripped_text(m)
    except StripError as e:
        res.problems.append(f"cannot strip: {e.message}")
        return False
    if res.regions == 0:
        res.problems.append("the reference has no '### BEGIN SOLUTION' region")
    for r in regions(text, str(ref)):
        if r.hints:
            res.problems.append(f"{r.qualname}: a '# HINT' line inside a solution region is dropped "
                                "(by tito and nbgrader alike): move it above '### BEGIN SOLUTION'")
    for line in leaks(text, stripped):
        res.problems.append(f"solution line leaks into the stripped file: {line!r}")
    res.problems += [f"lesson: {p}" for p in notebooks.lesson_problems(text)]
    return src.check_file(m).exists()


def _run(src: Sources, m: Module, stub: bool):
    """One pytest run (in a worker thread): the report, or the one-line error that stopped it."""
    try:
        return checkrun.run_checks(m, _files(src, m, stub), src=src)
    except TitoError as e:  # e.g. the time limit
        return e.message


def _record(res: ModuleResult, stub: bool, report) -> None:
    """Fold one run into the module's result (in the main thread)."""
    if isinstance(report, str):
        res.problems.append(f"{'stub' if stub else 'reference'} run: {report}")
        return
    res.seconds += report.seconds
    total = len(report.results)
    if stub:
        res.vacuous = [r.name for r in report.passed]
        res.stub = f"{total - len(report.passed)}/{total}"
        if report.collect_errors or total == 0:
            res.problems.append("against the stub the checks do not even load (collection error or "
                                "no checks): create objects inside the checks, not at import time")
        for name in res.vacuous:
            res.problems.append(f"vacuous check (passes on the stub): {name}")
    else:
        res.reference = f"{len(report.passed)}/{total}"
        if not report.ok:
            why = report.problem() or "; ".join(f"{r.name}: {r.short}" for r in report.failures()[:5])
            res.problems.append(f"the reference fails its own checks: {why}")


_IMPORT_SCRIPT = """
import importlib, json, sys
out = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException as e:
        out[name] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


def _stubs_import(src: Sources, mods: list[Module]) -> dict[str, str]:
    """Import every stripped module (with only stripped modules around it) in one subprocess."""
    files: dict = {p.name: p for p in src.support_files()}
    wanted = {*registry.built_modules(), *mods, *(d for x in mods for d in registry.all_prereqs(x))}
    for m in wanted:  # the selected modules import the others they build on
        files[m.file_name] = src.stripped_text(m)
    with tempfile.TemporaryDirectory(prefix="tito-verify-") as tmp:
        pkg = checkrun.stage(files, Path(tmp))
        proc = subprocess.run([sys.executable, "-c", _IMPORT_SCRIPT, "tinytorch",
                               *(m.package_module for m in mods)],
                              cwd=tmp, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(pkg.parent)})
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"tinytorch": f"import check crashed: {proc.stderr.strip()[-300:]}"}


def _milestone_problems() -> list[str]:
    problems = []
    built = {m.id for m in registry.built_modules()}
    for ms in registry.MILESTONES:
        for p in ms.parts:
            if set(ms.modules_for(p)) <= built:  # runnable in this release: the script must exist
                try:
                    found = importlib.util.find_spec(p.script) is not None
                except ModuleNotFoundError:
                    found = False
                if not found:
                    problems.append(f"milestone {ms.id} part {p.number}: script {p.script} not found")
    return problems


def verify(src: Sources | None = None, jobs: int = 2, only: list[Module] | None = None) -> VerifyReport:
    """Run every check described in the module docstring; see VerifyReport.ok."""
    src = src or Sources.installed()
    problems = registry.consistency_problems() + _milestone_problems()
    results = [ModuleResult(m) for m in (only or registry.built_modules())]
    runnable = [r for r in results if _static(src, r)]
    strippable = [r.module for r in results if not any(p.startswith("cannot strip") for p in r.problems)
                  and src.reference_file(r.module).exists()]
    for name, error in _stubs_import(src, strippable).items():
        if name == "tinytorch":
            problems.append(f"the package __init__ does not import without learner modules: {error}")
        else:
            r = next(r for r in results if r.module.package_module == name)
            r.problems.append(f"the stripped file does not import: {error}")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        runs = [(r, stub, pool.submit(_run, src, r.module, stub)) for r in runnable
                for stub in (False, True)]
        for r, stub, future in runs:
            _record(r, stub, future.result())
    return VerifyReport(results, problems)
