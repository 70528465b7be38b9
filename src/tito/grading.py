"""`tito grade`: a class's module checks re-run in isolation, its milestones read, one report.

    learners = find_learners(folder)            # tito workspaces, or an nbgrader submitted/ tree
    result = grade(learners, modules, timeout=180, jobs=4)
    write_csv(result, out / "grades.csv")       # one row per learner, for the gradebook
    write_html(result, out / "grades.html")     # the same, readable, + the most common failures
    release(course_dir, modules)                # nbgrader's source/ and release/ notebooks

Each learner-module runs that module's checks the way `tito module test` does - the same check
file and conftest (import guard, JSON report), the package staged by tito.checkrun - but in a
process group of its own with a wall-clock limit, its output read through a bounded buffer and
every file it writes capped in size (RLIMIT_FSIZE). A learner's code that hangs, crashes or
prints without end costs that learner that module (`timeout`, `error`); the class run goes on.
It is no sandbox: the checks run the learner's code with the grader's rights (use a container
for code you do not trust).

Nothing is written into a learner's folder: of the .py/.ipynb pair the one edited last is read
as it is, the package is staged in a temporary folder, and the state files are read without
locking or repair.

    workspace  (a folder with .tito/): for each module, the learner's working file with their own
               package around it (tinytorch/: the modules they completed) - what
               `tito module test` checks. Milestones: the achievements in .tito/milestones.json
               (the best measured value of each victory condition), whether the code changed
               since the run (sha256), and the rubric score of `tito milestone submit`, if any.
    nbgrader   submitted/<student>/<assignment>/<name>.ipynb, the assignment named by its module
               (03_layers, layers or 03) or by its notebook (layers.ipynb): each graded on its
               own, with the reference for the modules it builds on - as nbgrader's autograde does
               with the reference as the kernel's tinytorch.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tito import checkrun, notebooks, registry, state
from tito import milestone_run as mr
from tito.checkrun import CheckReport
from tito.errors import TitoError
from tito.registry import Condition, Milestone, Module
from tito.report import badge, esc, fmt_value, page, table
from tito.workspace import Sources, Workspace, sha256

PASS, FAIL, TIMEOUT, ERROR, MISSING = "pass", "fail", "timeout", "error", "missing"
WORKSPACE, NBGRADER = "workspace", "nbgrader"
DEFAULT_TIMEOUT = 180.0  # seconds per learner-module
MAX_OUTPUT = 256 * 1024  # bytes of a check run's output kept (the rest is counted and dropped)
MAX_FILE = 64 * 1024 * 1024  # the largest file a check run may write (RLIMIT_FSIZE)


# ---------------------------------------------------------------------------------------------
# Who is in the class
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Learner:
    name: str
    root: Path  # the workspace, or the student's folder under submitted/
    kind: str  # WORKSPACE or NBGRADER
    notebooks: dict = field(default_factory=dict, compare=False)  # nbgrader: module id -> .ipynb


def find_learners(folder: str | Path) -> list[Learner]:
    """Every learner in `folder`: its sub-folders that are workspaces (.tito/) or nbgrader
    students (<student>/<assignment>/*.ipynb). `folder` may also be an nbgrader course (it has
    submitted/), a submitted/ folder itself, or one workspace."""
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise TitoError(f"{root} is not a folder")
    if (root / state.STATE_DIR).is_dir():
        return [Learner(root.name, root, WORKSPACE)]
    if (root / "submitted").is_dir():
        root = root / "submitted"
    learners = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (d / state.STATE_DIR).is_dir():
            learners.append(Learner(d.name, d, WORKSPACE))
        elif found := _submitted_notebooks(d):
            learners.append(Learner(d.name, d, NBGRADER, found))
    if not learners:
        raise TitoError(f"no learners in {root}",
                        "expected workspaces (folders with .tito/, made by `tito init`) or an "
                        "nbgrader tree submitted/<student>/<assignment>/<name>.ipynb")
    return learners


def _submitted_notebooks(student: Path) -> dict[str, Path]:
    """module id -> the notebook a student submitted for it."""
    found = {}
    for a in sorted(p for p in student.iterdir() if p.is_dir()):
        nbs = sorted(a.glob("*.ipynb"))
        m = _module_named(a.name) or (_module_named(nbs[0].stem) if len(nbs) == 1 else None)
        if m is None:
            continue
        named = [nb for nb in nbs if nb.stem == m.name]
        if named or len(nbs) == 1:
            found[m.id] = (named or nbs)[0]
    return found


def _module_named(text: str) -> Module | None:
    try:
        return registry.get_module(text)
    except TitoError:
        return None


def parse_modules(texts: list[str] | None) -> list[Module]:
    """Module ids as typed: '03', 'layers', or a range '01-05'; default: every built module."""
    if not texts:
        return registry.built_modules()
    out: list[Module] = []
    for text in texts:
        for part in str(text).replace(",", " ").split():
            if "-" in part and all(x.strip().isdigit() for x in part.split("-", 1)):
                a, b = (int(x) for x in part.split("-", 1))
                chosen = [registry.get_module(i) for i in range(a, b + 1)]
            else:
                chosen = [registry.get_module(part)]
            out += [m for m in chosen if m not in out]
    coming = [m for m in out if not m.built]
    if coming:
        raise TitoError(f"module(s) {registry.compact_ids(m.id for m in coming)} are not built yet: "
                        "there is nothing to grade")
    return out


# ---------------------------------------------------------------------------------------------
# One learner-module: the checks, in isolation
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Failure:
    check: str  # the check's name, e.g. test_linear_forward
    function: str | None  # the learner's function the check blames
    message: str  # the first line of what it said


@dataclass
class ModuleGrade:
    module: Module
    status: str  # PASS / FAIL / TIMEOUT / ERROR / MISSING
    passed: int = 0
    total: int = 0
    failures: list[Failure] = field(default_factory=list)
    detail: str = ""  # why, for a timeout, an error, a missing file, a failure beyond the checks
    seconds: float = 0.0


def learner_files(learner: Learner, m: Module, src: Sources) -> dict | None:
    """The `tinytorch` package to stage for module `m` (file name -> path or text), or None when
    the learner has no file for it."""
    if learner.kind == NBGRADER:
        nb = learner.notebooks.get(m.id)
        if nb is None:
            return None
        files: dict = {p.name: p for p in src.support_files()}
        for dep in registry.all_prereqs(m):
            files[dep.file_name] = src.reference_file(dep)
        files[m.file_name] = notebooks.py_text(nb)
        return files
    ws = Workspace(learner.root)
    text = working_text(ws.working_file(m))
    if text is None:
        return None
    files = {p.name: p for p in sorted(ws.package.glob("*.py"))}
    files[m.file_name] = text
    return files


def working_text(py: Path) -> str | None:
    """The code of a .py/.ipynb pair, from the file edited last - as tito.notebooks.sync decides,
    but read-only (a grader never rewrites a learner's file)."""
    nb = notebooks.notebook_path(py)
    if nb.exists() and (not py.exists() or nb.stat().st_mtime_ns > py.stat().st_mtime_ns):
        return notebooks.py_text(nb)  # TitoError for a broken notebook
    return py.read_bytes().decode("utf-8", "replace") if py.exists() else None


# pytest, with every file it (and the learner's code) writes capped in size: past the cap a write
# fails with EFBIG ("File too large"; Python ignores SIGXFSZ) instead of filling the disk.
_PYTEST = """\
import sys
try:
    import resource
    cap, hard = int(sys.argv[1]), resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
except (ImportError, ValueError, OSError):
    pass
del sys.argv[1]
import pytest
sys.exit(pytest.console_main())
"""


def run_module(m: Module, files: dict, src: Sources, timeout: float = DEFAULT_TIMEOUT,
               max_output: int = MAX_OUTPUT, max_file: int = MAX_FILE) -> ModuleGrade:
    """Stage `files` as `tinytorch` and run module `m`'s checks on it, bounded in time, output
    and file size. Never raises for anything the learner's code does."""
    mine = files.get(m.file_name)
    try:
        text = mine.read_text(encoding="utf-8") if isinstance(mine, Path) else str(mine)
        compile(text, m.file_name, "exec")
    except SyntaxError as e:
        return ModuleGrade(m, ERROR, detail=f"{m.file_name}:{e.lineno}: syntax error: {e.msg}")
    except (ValueError, OSError) as e:  # null bytes, unreadable
        return ModuleGrade(m, ERROR, detail=f"{m.file_name} cannot be compiled: {e}")
    with tempfile.TemporaryDirectory(prefix=f"tito-grade-{m.key}-") as tmp:
        tmp = Path(tmp)
        pkg = checkrun.stage(files, tmp / "stage")
        report_path = tmp / "report.json"
        # --capture=no: what the learner's code prints comes straight into the bounded reader
        # (pytest's capture would buffer it in a temporary file first)
        args = checkrun.pytest_args(src.check_file(m), tmp) + ["--capture=no"]
        cmd = [sys.executable, "-c", _PYTEST, str(max_file), *args]
        start = time.monotonic()
        code, output, timed_out = run_bounded(cmd, _env(pkg, report_path), tmp, timeout, max_output)
        seconds = time.monotonic() - start
        if timed_out:
            return ModuleGrade(m, TIMEOUT, seconds=seconds,
                               detail=f"stopped at the time limit of {timeout:g} s (an infinite "
                                      "loop or a very slow function?)")
        report = CheckReport(m, code, output=output, seconds=seconds)
        try:
            checkrun.read_report(report, report_path)
        except (ValueError, KeyError, TypeError) as e:
            return ModuleGrade(m, ERROR, seconds=seconds,
                               detail=f"the checks' report could not be read ({e})")
    return module_grade(report)


def module_grade(report: CheckReport) -> ModuleGrade:
    """A check report as a grade."""
    m, total, passed = report.module, len(report.results), len(report.passed)
    failures = [Failure(r.name, r.function, r.short or _KIND_SAYS.get(r.kind, r.outcome))
                for r in report.failures()]
    if report.ok:
        return ModuleGrade(m, PASS, passed, total, seconds=report.seconds)
    if report.results:
        detail = report.problem() or ("" if failures else f"pytest exit code {report.exit_code}")
        return ModuleGrade(m, FAIL, passed, total, failures, detail, report.seconds)
    if report.exit_code < 0:  # killed by a signal (a segfault in an extension, ...): no report
        sig = -report.exit_code
        return ModuleGrade(m, ERROR, detail=f"the check process was killed by signal {sig} "
                                            f"({_signal_name(sig)})", seconds=report.seconds)
    detail = report.problem() or f"the checks did not run (exit code {report.exit_code})"
    first = _first_error_line(report.collect_errors[0] if report.collect_errors else report.output)
    return ModuleGrade(m, ERROR, detail=detail + (f": {first}" if first else ""),
                       seconds=report.seconds)


_KIND_SAYS = {"stub": "not written yet (raise NotImplementedError())"}


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return "?"


def _first_error_line(text: str) -> str:
    """The last line that looks like an exception ('NameError: ...') - what went wrong."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        head = ln.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Interrupt", "Exit")) and " " not in head:
            return ln[:300]
    return lines[-1][:300] if lines else ""


def _env(pkg: Path, report_path: Path) -> dict:
    """The check run's environment: that of `tito module test` (tito.checkrun.run_checks), and the
    same for every learner whatever the grader's shell holds (no PYTEST_ADDOPTS)."""
    env = checkrun.run_env(pkg, report_path)
    for var in ("TITO_CHECK_TASK", "TITO_MODULE_FILE", "PYTEST_ADDOPTS"):
        env.pop(var, None)
    env["MPLBACKEND"] = "Agg"
    return env


def run_bounded(cmd: list[str], env: dict, cwd: Path, timeout: float,
                max_output: int = MAX_OUTPUT) -> tuple[int, str, bool]:
    """Run `cmd` in a new process group: (exit code, output, timed out). At most `max_output`
    bytes of its output are kept; at the time limit, or when it ends, the whole group is killed
    (so nothing the learner's code started lives on)."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    kept, dropped = bytearray(), [0]

    def read() -> None:
        fd = proc.stdout.fileno()
        while chunk := os.read(fd, 65536):
            room = max_output - len(kept)
            kept.extend(chunk[:room])
            dropped[0] += max(0, len(chunk) - room)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:  # also on Ctrl-C: take the learner's processes down with us
        _kill_group(proc)
    reader.join(timeout=5)  # a process that escaped the group may hold the pipe: do not wait on it
    if not reader.is_alive():
        proc.stdout.close()
    text = bytes(kept).decode("utf-8", "replace")
    if dropped[0]:
        text += f"\n[... {dropped[0]} more bytes of output dropped]"
    return proc.returncode, text, timed_out


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


# ---------------------------------------------------------------------------------------------
# Milestones: what the learner's state files say (read-only, defensively)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RubricLine:
    name: str
    points: float | None
    out_of: float | None
    evidence: str = ""


@dataclass(frozen=True)
class Rubric:
    score: float
    out_of: float
    lines: tuple = ()  # RubricLine, ...
    recorded_at: str = ""


@dataclass
class MilestoneGrade:
    milestone: Milestone
    achieved: list[int] = field(default_factory=list)  # the part numbers achieved
    values: dict = field(default_factory=dict)  # part -> [(Condition, best measured value)]
    runs: int = 0  # recorded runs, all parts
    changed: list[str] = field(default_factory=list)  # modules changed since the latest run
    rubric: Rubric | None = None

    @property
    def built_parts(self) -> list:
        return [p for p in self.milestone.parts if not mr.coming_modules(self.milestone, p)]


def read_json(path: Path) -> tuple[dict, str | None]:
    """A state file as a dict, or ({}, why not) - never moved, locked or repaired."""
    if not path.exists():
        return {}, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return {}, f"{path.name} is unreadable ({type(e).__name__})"
    return (data, None) if isinstance(data, dict) else ({}, f"{path.name} is not a JSON object")


def clean_achievements(doc: dict) -> dict:
    """milestones.json's achievements, keeping only well-formed records of numbered parts."""
    raw = doc.get("achievements")
    out: dict = {}
    for mid, parts in (raw.items() if isinstance(raw, dict) else ()):
        if not isinstance(parts, dict):
            continue
        for part, recs in parts.items():
            if str(part).isdigit() and isinstance(recs, list):
                good = [r for r in recs if isinstance(r, dict) and isinstance(r.get("metrics"), dict)]
                if good:
                    out.setdefault(str(mid), {})[str(part)] = good
    return out


# `tito milestone submit` appends to "submissions": {id: [record, ...]} (tito.milestone_work)
_SCORE_SECTIONS = ("submissions", "submission", "submits", "submit", "rubric", "rubrics", "scores")


def find_rubric(doc: dict, milestone_id: str) -> Rubric | None:
    """The latest rubric score recorded for a milestone (by `tito milestone submit`), wherever the
    record sits: a top-level section keyed by milestone id, or beside the run records under
    achievements/<id>/<non-numeric key>. None when there is none or it is malformed."""
    candidates = []
    for key in _SCORE_SECTIONS:
        section = doc.get(key)
        if isinstance(section, dict):
            candidates.append(section.get(milestone_id))
    beside = doc.get("achievements", {})
    beside = beside.get(milestone_id) if isinstance(beside, dict) else None
    if isinstance(beside, dict):
        candidates += [v for k, v in beside.items() if not str(k).isdigit()]
    for c in candidates:
        records = c if isinstance(c, list) else [c]
        for rec in reversed(records):  # the newest is appended last
            rubric = _rubric_record(rec)
            if rubric:
                return rubric
    return None


def _number(rec: dict, *keys) -> float | None:
    for k in keys:
        v = rec.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def _rubric_record(rec) -> Rubric | None:
    """A submission record: {"score", "lines": [{"name", "weight", "passed", "evidence"}], ...}
    as `tito milestone submit` writes it (other spellings of the same fields are accepted)."""
    if not isinstance(rec, dict):
        return None
    items = next((rec[k] for k in ("lines", "rubric", "items") if isinstance(rec.get(k), list)), [])
    lines = []
    for it in items:
        if not isinstance(it, dict):
            continue
        name = next((str(it[k]) for k in ("name", "item", "label", "line") if k in it), "?")
        of = _number(it, "weight", "max", "of", "out_of", "possible")
        points = _number(it, "points", "score", "earned")
        if points is None and isinstance(it.get("passed"), bool) and of is not None:
            points = of if it["passed"] else 0.0
        lines.append(RubricLine(name, points, of, str(it.get("evidence", ""))[:300]))
    score = _number(rec, "score", "total", "points")
    if score is None and lines and all(x.points is not None for x in lines):
        score = sum(x.points for x in lines)
    if score is None:
        return None
    out_of = _number(rec, "max", "max_score", "out_of", "possible")
    if out_of is None and lines and all(x.out_of is not None for x in lines):
        out_of = sum(x.out_of for x in lines)
    when = rec.get("submitted_at") or rec.get("recorded_at") or ""
    return Rubric(score, out_of or 100.0, tuple(lines), str(when))


def milestone_grades(root: Path, doc: dict) -> list[MilestoneGrade]:
    """For every built milestone: the parts achieved, the best measured values, the rubric."""
    ach = clean_achievements(doc)
    out = []
    for ms in registry.MILESTONES:
        if mr.coming_modules(ms):
            continue
        g = MilestoneGrade(ms, rubric=find_rubric(doc, ms.id))
        best = mr.best_values(ms, ach)
        latest = None
        for p in ms.parts:
            recs = ach.get(ms.id, {}).get(str(p.number), [])
            g.runs += len(recs)
            if recs:
                g.achieved.append(p.number)
                g.values[p.number] = [(c, best.get((p.number, c.metric))) for c in p.conditions]
                newest = max(recs, key=lambda r: str(r.get("recorded_at", "")))
                if latest is None or str(newest.get("recorded_at", "")) > str(latest.get("recorded_at", "")):
                    latest = newest
        if latest is not None:
            g.changed = _changed_since(root, latest)
        out.append(g)
    return out


def _changed_since(root: Path, rec: dict) -> list[str]:
    """Modules whose file in the learner's package differs from the one the run used."""
    used = rec.get("modules")
    changed = []
    for mid, digest in (used.items() if isinstance(used, dict) else ()):
        m = _module_named(str(mid))
        f = root / "tinytorch" / m.file_name if m else None
        if f is None or not f.exists() or sha256(f) != digest:
            changed.append(str(mid))
    return changed


# ---------------------------------------------------------------------------------------------
# A learner, the class
# ---------------------------------------------------------------------------------------------
@dataclass
class LearnerGrade:
    learner: Learner
    modules: dict = field(default_factory=dict)  # module id -> ModuleGrade
    milestones: list = field(default_factory=list)  # [MilestoneGrade]
    recorded: list = field(default_factory=list)  # module ids tito recorded complete
    notes: list = field(default_factory=list)

    @property
    def modules_passed(self) -> int:
        return sum(1 for g in self.modules.values() if g.status == PASS)

    @property
    def parts_achieved(self) -> int:
        return sum(len(g.achieved) for g in self.milestones)


@dataclass
class ClassGrades:
    folder: Path
    modules: list  # [Module] graded
    learners: list  # [LearnerGrade], in name order
    timeout: float
    seconds: float = 0.0

    def common_failures(self, n: int = 10) -> list[tuple[Module, str, int, str]]:
        """(module, check, learners failing it, what it says most often), most common first."""
        count: Counter = Counter()
        said: dict = {}
        for lg in self.learners:
            for g in lg.modules.values():
                for f in {f.check: f for f in g.failures}.values():
                    count[(g.module.id, f.check)] += 1
                    said.setdefault((g.module.id, f.check), Counter())[f.message] += 1
        order = sorted(count.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(registry.get_module(mid), check, k, said[(mid, check)].most_common(1)[0][0])
                for (mid, check), k in order[:n]]

    def module_counts(self, m: Module) -> Counter:
        return Counter(lg.modules[m.id].status for lg in self.learners if m.id in lg.modules)


def grade_learner(learner: Learner, modules: list[Module], src: Sources,
                  timeout: float = DEFAULT_TIMEOUT, max_output: int = MAX_OUTPUT) -> LearnerGrade:
    lg = LearnerGrade(learner)
    for m in modules:
        try:
            files = learner_files(learner, m, src)
            lg.modules[m.id] = (ModuleGrade(m, MISSING, detail="no file for this module")
                                if files is None else run_module(m, files, src, timeout, max_output))
        except TitoError as e:  # e.g. a notebook that is not JSON
            lg.modules[m.id] = ModuleGrade(m, ERROR, detail=e.message)
        except Exception as e:  # noqa: BLE001 - one learner's odd folder must not stop the class
            lg.modules[m.id] = ModuleGrade(m, ERROR, detail=f"could not be graded: "
                                                            f"{type(e).__name__}: {e}")
    if learner.kind == WORKSPACE:
        progress, why = read_json(learner.root / state.STATE_DIR / state.PROGRESS)
        lg.notes += [why] if why else []
        records = progress.get("modules") if isinstance(progress.get("modules"), dict) else {}
        lg.recorded = sorted(mid for mid, r in records.items()
                             if isinstance(r, dict) and r.get("completed_at"))
        doc, why = read_json(learner.root / state.STATE_DIR / state.MILESTONES)
        lg.notes += [why] if why else []
        lg.milestones = milestone_grades(learner.root, doc)
    return lg


def grade(learners: list[Learner], modules: list[Module], src: Sources | None = None,
          timeout: float = DEFAULT_TIMEOUT, jobs: int = 1, progress=None,
          folder: Path | None = None, max_output: int = MAX_OUTPUT) -> ClassGrades:
    """Grade every learner, `jobs` learners at a time. `progress(learner_grade, done, total)`
    is called as each learner is finished."""
    src = src or Sources.installed()
    start = time.monotonic()
    results: dict = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(grade_learner, ln, modules, src, timeout, max_output): ln
                   for ln in learners}
        for future in as_completed(futures):
            lg = future.result()
            results[lg.learner.name, str(lg.learner.root)] = lg
            if progress:
                progress(lg, len(results), len(learners))
    ordered = [results[ln.name, str(ln.root)] for ln in learners]
    return ClassGrades(Path(folder or (learners[0].root.parent if learners else ".")), modules,
                       ordered, timeout, time.monotonic() - start)


# ---------------------------------------------------------------------------------------------
# The class report: CSV for the gradebook, HTML to read
# ---------------------------------------------------------------------------------------------
def _ms_key(ms: Milestone) -> str:
    return f"m{ms.id}_{ms.slug}"


def _values_text(g: MilestoneGrade) -> str:
    """'part 1: train_acc=1 test_acc=0.995' - the best measured values, raw numbers."""
    parts = []
    for number in g.achieved:
        vals = " ".join(f"{c.metric}={v:.4g}" for c, v in g.values[number] if v is not None)
        parts.append(f"part {number}: {vals}")
    return "; ".join(parts)


def csv_rows(result: ClassGrades) -> list[dict]:
    milestones = [ms for ms in registry.MILESTONES if not mr.coming_modules(ms)]
    rows = []
    for lg in result.learners:
        row = {"learner": lg.learner.name, "source": lg.learner.kind,
               "modules_passed": lg.modules_passed, "modules_graded": len(result.modules)}
        for m in result.modules:
            g = lg.modules.get(m.id)
            row[m.key] = g.status if g else ""
            row[f"{m.key}_passed"] = g.passed if g else ""
            row[f"{m.key}_total"] = g.total if g else ""
        row["recorded_complete"] = " ".join(lg.recorded)
        row["milestone_parts_achieved"] = lg.parts_achieved
        by = {g.milestone.id: g for g in lg.milestones}
        for ms in milestones:
            g, key = by.get(ms.id), _ms_key(ms)
            row[f"{key}_parts"] = len(g.achieved) if g else ""
            row[f"{key}_values"] = _values_text(g) if g else ""
            row[f"{key}_code_changed"] = " ".join(g.changed) if g else ""
            row[f"{key}_rubric"] = f"{g.rubric.score:g}" if g and g.rubric else ""
            row[f"{key}_rubric_max"] = f"{g.rubric.out_of:g}" if g and g.rubric else ""
        row["failing_checks"] = "; ".join(f"{g.module.key}::{f.check}" for g in lg.modules.values()
                                          for f in g.failures)
        row["problems"] = "; ".join([f"{g.module.key}: {g.status}: {g.detail}"
                                     for g in lg.modules.values()
                                     if g.status in (TIMEOUT, ERROR)] + lg.notes)
        rows.append(row)
    return rows


def write_csv(result: ClassGrades, path: Path) -> Path:
    rows = csv_rows(result)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["learner"])
        writer.writeheader()
        writer.writerows(rows)
    return path


_KIND = {PASS: "ok", FAIL: "bad", TIMEOUT: "bad", ERROR: "bad", MISSING: "muted"}


def _cell(g: ModuleGrade | None) -> str:
    if g is None:
        return "-"
    counts = f" {g.passed}/{g.total}" if g.total else ""
    return badge(f"{g.status}{counts}", _KIND[g.status])


def build_html(result: ClassGrades) -> str:
    ms_built = [ms for ms in registry.MILESTONES if not mr.coming_modules(ms)]
    n = len(result.learners)
    body = [f'<p class="chips">{badge(f"{n} learner(s)", "muted")}'
            f'{badge(f"{len(result.modules)} module(s) graded", "muted")}'
            f'{badge(f"time limit {result.timeout:g} s per module", "muted")}</p>']
    # the class at a glance
    rows = []
    for lg in result.learners:
        rubric = ", ".join(f"{g.milestone.id}: {g.rubric.score:g}/{g.rubric.out_of:g}"
                           for g in lg.milestones if g.rubric)
        rows.append([f'<a href="#learner-{esc(lg.learner.name)}">{esc(lg.learner.name)}</a>',
                     f"{lg.modules_passed}/{len(result.modules)}",
                     *[_cell(lg.modules.get(m.id)) for m in result.modules],
                     str(lg.parts_achieved), esc(rubric) or "-"])
    body += ["<h2>Modules completed</h2>",
             table(["learner", "passed", *[m.key for m in result.modules], "milestone parts",
                    "rubric"], rows)]
    # per module, across the class
    rows = []
    for m in result.modules:
        c = result.module_counts(m)
        rows.append([esc(m.key), *[str(c.get(s, 0)) for s in (PASS, FAIL, TIMEOUT, ERROR, MISSING)]])
    body += ["<h2>Modules across the class</h2>",
             table(["module", PASS, FAIL, TIMEOUT, ERROR, MISSING], rows)]
    # milestones with measured values
    rows = []
    for lg in result.learners:
        by = {g.milestone.id: g for g in lg.milestones}
        cells = [esc(lg.learner.name)]
        for ms in ms_built:
            cells.append(_milestone_cell(by.get(ms.id)))
        rows.append(cells)
    body += ["<h2>Milestones achieved</h2>",
             '<p class="note">the best measured value of each victory condition, from the '
             "learner's .tito/milestones.json; rubric scores from `tito milestone submit`</p>",
             table(["learner", *[f"{ms.id} {ms.title}" for ms in ms_built]], rows)]
    # the most common failing checks
    common = result.common_failures()
    rows = [[esc(m.key), f"<code>{esc(check)}</code>", f"{k}/{n}", esc(msg)]
            for m, check, k, msg in common]
    body += ["<h2>Most common failing checks</h2>",
             table(["module", "check", "learners", "what it says (most often)"], rows)
             if rows else '<p class="note">no check failed</p>']
    # each learner
    body.append("<h2>Learners</h2>")
    for lg in result.learners:
        body.append(_learner_section(lg))
    return page("TinyTorch class report", "\n".join(body),
                subtitle=f"{result.folder} - {n} learner(s) graded in {result.seconds:.0f} s")


def _milestone_cell(g: MilestoneGrade | None) -> str:
    if g is None or (not g.achieved and not g.rubric):
        return '<span class="note">-</span>'
    out = []
    for number in g.achieved:
        vals = ", ".join(f"{esc(c.metric)} {esc(fmt_value(c.metric, v, c.op, c.target))}"
                         for c, v in g.values[number] if v is not None and not _is_flag(c))
        out.append(f"{badge(f'part {number} ✓', 'ok')} {vals}")
    if g.changed:
        out.append(f'<span class="note">code changed since: {esc(" ".join(g.changed))}</span>')
    if g.rubric:
        out.append(badge(f"rubric {g.rubric.score:g}/{g.rubric.out_of:g}", "warn"))
    return "<br>".join(out)


def _is_flag(c: Condition) -> bool:
    return c.op == "==" and c.target in (0, 1)


def _learner_section(lg: LearnerGrade) -> str:
    name = esc(lg.learner.name)
    out = [f'<section id="learner-{name}"><h3>{name} {badge(lg.learner.kind, "muted")}</h3>',
           f'<p class="note">{esc(lg.learner.root)}</p>']
    rows = []
    for g in lg.modules.values():
        if g.failures:
            rows += [[esc(g.module.key), f"<code>{esc(f.check)}</code>", esc(f.function or "-"),
                      esc(f.message)] for f in g.failures]
        if g.status in (TIMEOUT, ERROR) or (g.status == FAIL and g.detail):
            rows.append([esc(g.module.key), badge(g.status, _KIND[g.status]), "-", esc(g.detail)])
    out.append(table(["module", "failing check", "function", "message"], rows) if rows
               else '<p class="note">every graded module passes</p>')
    for g in lg.milestones:
        if g.rubric and g.rubric.lines:
            rows = [[esc(x.name), esc("-" if x.points is None else f"{x.points:g}"),
                     esc("-" if x.out_of is None else f"{x.out_of:g}"), esc(x.evidence)]
                    for x in g.rubric.lines]
            out.append(f"<h4>{esc(g.milestone.id)} {esc(g.milestone.title)}: rubric "
                       f"{g.rubric.score:g}/{g.rubric.out_of:g}</h4>"
                       + table(["rubric line", "points", "of", "evidence"], rows))
    out += [f'<p class="note">{esc(note)}</p>' for note in lg.notes]
    out.append("</section>")
    return "".join(out)


def write_html(result: ClassGrades, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state.write_atomic(path, build_html(result))
    return path


# ---------------------------------------------------------------------------------------------
# Release: the assignment files for nbgrader
# ---------------------------------------------------------------------------------------------
NBGRADER_CONFIG = '''"""nbgrader's configuration for this course folder (written by `tito grade release`)."""
import os

c = get_config()  # noqa: F821 - nbgrader provides it
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
# a module's check cells run its checks: far more than nbgrader's default 30 s per cell
c.Execute.timeout = 600
'''


def release(out: str | Path, modules: list[Module], src: Sources | None = None,
            force: bool = False) -> list[Path]:
    """nbgrader's course layout under `out`, one assignment per module (named by its key):

        source/03_layers/layers.ipynb     the lesson with its solutions and nbgrader metadata
        release/03_layers/layers.ipynb    the learner's notebook: tito's stripped file, which is
                                          what nbgrader's generate_assignment makes of the source
        nbgrader_config.py                course root = this folder (kept if it exists)

    Existing notebooks are kept unless `force`. Returns the files written."""
    src = src or Sources.installed()
    out = Path(out).expanduser().resolve()
    plan = []
    for m in modules:
        for layout, text in (("source", src.reference_text(m)), ("release", src.stripped_text(m))):
            plan.append((out / layout / m.key / f"{m.name}.ipynb", text))
    existing = [p for p, _ in plan if p.exists()]
    if existing and not force:
        raise TitoError(f"{existing[0]} exists ({len(existing)} file(s) would be replaced)",
                        "pass --force to replace them")
    written = []
    for path, text in plan:
        path.parent.mkdir(parents=True, exist_ok=True)
        state.write_atomic(path, notebooks.notebook_json(text))
        written.append(path)
    config = out / "nbgrader_config.py"
    if not config.exists():
        state.write_atomic(config, NBGRADER_CONFIG)
        written.append(config)
    return written
