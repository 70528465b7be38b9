"""`tito dev mutants`: how strong are a module's checks? Mutation testing of the solutions.

`tito dev verify` proves that every check fails on a stub - the easiest bug there is. Learners
write code that is almost right, so this plants the small mistakes they make, one at a time, into
the reference solution and asks the module's checks to notice:

    mutants = generate(source, "04")           # every mutant of the solution regions, with an id
    report = run(only=[module], sample=20)     # each one judged by the module's checks
    report.modules[0].score                    # killed / (total - equivalent)

A mutant is one edit inside a `### BEGIN SOLUTION` region (the given code stays byte for byte:
stripping a mutant gives the learner's file exactly). It is written into a scratch copy of a
reference package (support files + the module's reference prerequisites + the mutated module,
staged as `tito dev verify` stages it) and judged by the same runner as `tito module test`
(tito.checkrun.run_checks), in parallel, with a time limit. A check that fails *kills* it; a
mutant that still passes every check *survives* - the checks cannot tell it from the answer. A
mutant that runs past the time limit (an infinite loop) counts as killed, and is reported as a
hang. Pytest stops at the first failing check (-x, and without assertion rewriting, which only
changes failure messages), and the checks of the mutated function (`@pytest.mark.task`) run
first, so a killed mutant costs about one check run's start-up.

The operators, each mirroring a real learner mistake (OPERATORS below):

    axis       an `axis=` argument dropped, or 0 <-> 1 (an int axis: 1 if it was 0, else 0)
    keepdims   `keepdims=True` <-> `keepdims=False`
    transpose  a transpose dropped: `x.T`, `x.transpose(...)`, `np.transpose(x, ...)`,
               `.swapaxes`, `np.moveaxis` -> `x`
    arith      `+` <-> `-`, `*` <-> `/` (in `+=` and friends too)
    one_minus  a forgotten `1 -`: `1 - x` -> `x`
    const      an integer-valued number off by one: `n` -> `n - 1` (`1` -> `0`, `0` -> `-1`;
               not the -1 of a reshape, which NumPy reads as any negative number)
    compare    `>` <-> `>=`, `<` <-> `<=`
    augassign  an in-place update turned into an assignment: `x += y` -> `x = y` (also -=, *=, /=)
    delete     a statement deleted (replaced by `pass`; an `if`/`for` deletes its whole block)
    tuple      two neighbouring elements of a returned tuple swapped
    minmax     `max` <-> `min` (`maximum`/`minimum`, `argmax`/`argmin`, `amax`/`amin`)
    meansum    `.mean` <-> `.sum` (`np.mean`/`np.sum`)

Expressions inside f-strings and inside the exception of a `raise` are not mutated (they only
change an error message); the `raise` itself can be deleted. Every mutant compiles.

Each mutant has a stable id, `MODULE:FUNCTION:OPERATOR:LINE:COL:INDEX`, where LINE counts from the
function's `def` line (so editing the lesson above a function keeps its ids) and INDEX tells
apart the mutants one operator makes at one place (`axis` dropped = 0, swapped = 1).

Maintainer data lives in the repository's `mutants/` folder (docs/MUTANTS.md):
    mutants/equivalent.txt  survivors reviewed as equivalent, one per line: `ID  # reason`
    mutants/floors.json     {module id: the lowest sampled score CI accepts}; only ever raised
"""

from __future__ import annotations

import ast
import difflib
import io
import json
import os
import random
import time
import tokenize
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tito import checkrun, registry
from tito.errors import TitoError
from tito.registry import Module
from tito.strip import _functions, regions
from tito.verify import _files
from tito.workspace import Sources

OPERATORS = {
    "axis": "an axis= argument dropped, or swapped (0 <-> 1)",
    "keepdims": "keepdims=True <-> keepdims=False",
    "transpose": "a transpose dropped (x.T, x.transpose(...), np.transpose(x) -> x)",
    "arith": "+ <-> -, * <-> / (also in +=, -=, *=, /=)",
    "one_minus": "a forgotten '1 -': 1 - x -> x",
    "const": "an integer-valued constant off by one: n -> n - 1",
    "compare": "> <-> >=, < <-> <=",
    "augassign": "an in-place update turned into an assignment: x += y -> x = y",
    "delete": "a statement deleted (-> pass)",
    "tuple": "two neighbouring elements of a returned tuple swapped",
    "minmax": "max <-> min (maximum/minimum, argmax/argmin, amax/amin)",
    "meansum": "mean <-> sum",
}

_ARITH = {ast.Add: "-", ast.Sub: "+", ast.Mult: "/", ast.Div: "*"}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_COMPARE = {ast.Gt: (">", ">="), ast.GtE: (">=", ">"), ast.Lt: ("<", "<="), ast.LtE: ("<=", "<")}
_SWAPS = {"minmax": [("max", "min"), ("maximum", "minimum"), ("argmax", "argmin"),
                     ("amax", "amin"), ("nanmax", "nanmin")],
          "meansum": [("mean", "sum"), ("nanmean", "nansum")]}
_TRANSPOSE_METHODS = {"transpose", "swapaxes"}
_TRANSPOSE_FUNCTIONS = {"transpose", "swapaxes", "moveaxis"}
_ATOMS = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant, ast.List, ast.Tuple,
          ast.Dict, ast.Set)

DATA_DIR_ENV = "TITO_MUTANTS_DIR"  # overrides the repository's mutants/ folder
DEFAULT_SAMPLE_SEED = 0
MIN_LIMIT = 20.0  # seconds: the least time limit per mutant run
LIMIT_FACTOR = 4.0  # ... else this many times the reference's own check run


# ---------------------------------------------------------------------------------------------
# Mutants
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mutant:
    """One edit of a reference source: replace characters start..end with `new`."""

    module: str  # "04"
    function: str  # qualname of the function whose solution region it is in
    operator: str
    line: int  # 1-based line in the reference file (for people)
    col: int  # 0-based character column
    offset: int  # line counted from the function's `def` (for the id)
    index: int
    what: str  # e.g. "`+` -> `-`"
    start: int
    end: int
    new: str

    @property
    def id(self) -> str:
        return f"{self.module}:{self.function}:{self.operator}:{self.offset}:{self.col}:{self.index}"

    def apply(self, source: str) -> str:
        return source[:self.start] + self.new + source[self.end:]

    def diff(self, source: str, filename: str = "module.py", context: int = 1) -> str:
        """A small unified diff of the reference against this mutant."""
        lines = difflib.unified_diff(source.splitlines(), self.apply(source).splitlines(),
                                     f"a/{filename}", f"b/{filename}", n=context, lineterm="")
        return "\n".join(lines)


class _Text:
    """A source with its tokens: AST positions (UTF-8 byte columns) -> string offsets."""

    def __init__(self, source: str):
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.ops = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
                    if t.type == tokenize.OP]

    def pos(self, lineno: int, col_bytes: int) -> int:
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode("utf-8")[:col_bytes].decode("utf-8"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return self.pos(node.lineno, node.col_offset), self.pos(node.end_lineno, node.end_col_offset)

    def text(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.source[start:end]

    def atom(self, node: ast.AST) -> str:
        """The node's text, parenthesised unless it binds tighter than any operator."""
        text = self.text(node)
        return text if isinstance(node, _ATOMS) else f"({text})"

    def op_between(self, left: ast.AST, right: ast.AST, symbols) -> tuple[int, int, str] | None:
        """The operator token between two nodes: (start, end, symbol)."""
        lo, hi = self.span(left)[1], self.span(right)[0]
        for tok in self.ops:
            at = self.starts[tok.start[0] - 1] + tok.start[1]
            if lo <= at < hi and tok.string in symbols:
                return at, at + len(tok.string), tok.string
        return None

    def line_col(self, offset: int) -> tuple[int, int]:
        for i in range(len(self.starts) - 1):
            if self.starts[i] <= offset < self.starts[i + 1]:
                return i + 1, offset - self.starts[i]
        return len(self.lines), 0


def _integral(node: ast.AST) -> float | int | None:
    """The value of an integer-valued number literal (`3`, `1.0`, `-1`), else None."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node, sign = node.operand, -1
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if isinstance(node.value, int) or float(node.value).is_integer():
            return sign * node.value
    return None


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant)
                                               and isinstance(node.value, (str, bytes)))


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
        and isinstance(stmt.value.value, str)


def _edits(node: ast.AST, t: _Text, parents: dict):
    """(operator, what, start, end, new) for every mutation of this one node."""
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH \
            and not (_is_text(node.left) or _is_text(node.right)):
        found = t.op_between(node.left, node.right, {_SYMBOL[type(node.op)]})
        if found:
            start, end, sym = found
            yield "arith", f"`{sym}` -> `{_ARITH[type(node.op)]}`", start, end, _ARITH[type(node.op)]
        if isinstance(node.op, ast.Sub) and _integral(node.left) == 1:
            yield ("one_minus", f"`{t.text(node)}` -> `{t.text(node.right)}`",
                   *t.span(node), t.atom(node.right))
    elif isinstance(node, ast.AugAssign) and type(node.op) in _ARITH:
        found = t.op_between(node.target, node.value, {_SYMBOL[type(node.op)] + "="})
        if found:
            start, end, tok = found
            new = _ARITH[type(node.op)] + "="
            yield "arith", f"`{tok}` -> `{new}`", start, end, new
            yield "augassign", f"`{tok}` -> `=`", start, end, "="
    elif isinstance(node, ast.Compare):
        for left, op, right in zip([node.left, *node.comparators], node.ops, node.comparators):
            if type(op) in _COMPARE:
                sym, new = _COMPARE[type(op)]
                found = t.op_between(left, right, {sym})
                if found:
                    yield "compare", f"`{sym}` -> `{new}`", found[0], found[1], new
    elif isinstance(node, ast.Call):
        yield from _call_edits(node, t)
    elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
        if node.attr == "T":
            yield "transpose", "`.T` dropped", *t.span(node), t.atom(node.value)
        end = t.span(node)[1]
        for operator, pairs in _SWAPS.items():
            for a, b in pairs:
                for old, new in ((a, b), (b, a)):
                    if node.attr == old:
                        yield operator, f"`.{old}` -> `.{new}`", end - len(old), end, new
    elif isinstance(node, ast.Name) and node.id in ("max", "min") \
            and isinstance(parents.get(node), ast.Call) and parents[node].func is node:
        new = "min" if node.id == "max" else "max"
        yield "minmax", f"`{node.id}` -> `{new}`", *t.span(node), new
    value = _integral(node)
    if value is not None and not (isinstance(node, ast.Constant) and _integral(parents.get(node)) is not None):
        kw = parents.get(node)
        if not (isinstance(kw, ast.keyword) and kw.arg in ("axis", "keepdims")) \
                and not (value == -1 and _is_reshape(parents.get(node))):
            new = value - 1
            text = repr(new)
            yield "const", f"`{t.text(node)}` -> `{text}`", *t.span(node), text
    if isinstance(node, ast.stmt) and not isinstance(node, ast.Pass) and not _is_docstring(node):
        lines = t.text(node).splitlines()
        more = " ..." if len(lines) > 1 else ""
        yield "delete", f"deleted `{lines[0].strip()}{more}`", *t.span(node), "pass"
    if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) \
            and not any(isinstance(e, ast.Starred) for e in node.value.elts):
        elts = node.value.elts
        for a, b in zip(elts, elts[1:]):
            (a0, a1), (b0, b1) = t.span(a), t.span(b)
            between = t.source[a1:b0]
            yield ("tuple", f"`{t.text(a)}`, `{t.text(b)}` swapped", a0, b1,
                   t.text(b) + between + t.text(a))


def _is_reshape(node: ast.AST | None) -> bool:
    """A reshape call: its -1 ("the rest") works as any negative number in NumPy, so -1 -> -2
    would be an equivalent mutant."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
        and node.func.attr == "reshape"


def _call_edits(node: ast.Call, t: _Text):
    func = node.func
    if isinstance(func, ast.Attribute):
        is_np = isinstance(func.value, ast.Name) and func.value.id in ("np", "numpy")
        if is_np and func.attr in _TRANSPOSE_FUNCTIONS and node.args:
            yield "transpose", f"`np.{func.attr}(...)` dropped", *t.span(node), t.atom(node.args[0])
        elif not is_np and func.attr in _TRANSPOSE_METHODS:
            yield "transpose", f"`.{func.attr}(...)` dropped", *t.span(node), t.atom(func.value)
    args = sorted([*node.args, *node.keywords], key=lambda a: (a.lineno, a.col_offset))
    for i, kw in enumerate(args):
        if not isinstance(kw, ast.keyword):
            continue
        if kw.arg == "axis":
            start, end = t.span(kw)
            if i + 1 < len(args):  # `f(x, axis=1, keepdims=True)`: up to the next argument
                end = t.span(args[i + 1])[0]
            elif i > 0:  # the last one: from the end of the previous argument
                start = t.span(args[i - 1])[1]
            yield "axis", f"`{t.text(kw)}` dropped", start, end, ""
            value = _integral(kw.value)
            if isinstance(value, int):
                new = 1 if value == 0 else 0
                yield "axis", f"`axis={value}` -> `axis={new}`", *t.span(kw.value), str(new)
        elif kw.arg == "keepdims" and isinstance(kw.value, ast.Constant) \
                and isinstance(kw.value.value, bool):
            new = str(not kw.value.value)
            yield "keepdims", f"`keepdims={kw.value.value}` -> `keepdims={new}`", \
                *t.span(kw.value), new


def _quiet(node: ast.AST, parents: dict) -> bool:
    """Inside an f-string or a raised exception: only an error message would change."""
    child, node = node, parents.get(node)
    while node is not None:
        if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Raise) and child is not node):
            return True
        child, node = node, parents.get(node)
    return False


def generate(source: str, module: str, filename: str = "<module>") -> list[Mutant]:
    """Every mutant of the solution regions of `source`, in file order, duplicates removed.

    Only nodes whose lines lie inside a region (between its markers) are mutated, so everything
    else - the given code, the lesson, the markers - is byte-identical in every mutant."""
    tree = ast.parse(source, filename)
    t = _Text(source)
    found = regions(source, filename)
    defs = {name: first for name, first, _ in _functions(tree)}
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    out: list[Mutant] = []
    seen = {source}
    counts: dict[tuple, int] = {}
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or node.end_lineno is None:
            continue
        region = next((r for r in found if r.begin + 2 <= node.lineno and node.end_lineno <= r.end), None)
        if region is None or _quiet(node, parents):
            continue
        for operator, what, start, end, new in _edits(node, t, parents):
            line, col = t.line_col(start)
            offset = line - defs.get(region.qualname, line)
            key = (region.qualname, operator, offset, col)
            index = counts[key] = counts.get(key, -1) + 1
            mutant = Mutant(module, region.qualname, operator, line, col, offset, index,
                            what, start, end, new)
            text = mutant.apply(source)
            if text in seen:  # the same program as the reference or as an earlier mutant
                continue
            seen.add(text)
            out.append(mutant)
    return sorted(out, key=lambda m: (m.start, m.end, m.operator, m.index))


# ---------------------------------------------------------------------------------------------
# The maintainer's data: reviewed equivalent mutants, per-module floors
# ---------------------------------------------------------------------------------------------
def data_dir() -> Path:
    """The repository's `mutants/` folder ($TITO_MUTANTS_DIR overrides)."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").exists():
        raise TitoError("`tito dev mutants` runs from the repository checkout (it reads mutants/)",
                        f"or set {DATA_DIR_ENV} to a folder with equivalent.txt and floors.json")
    return root / "mutants"


def load_equivalents(path: Path) -> dict[str, str]:
    """mutant id -> the reviewed reason it is equivalent. One `ID  # reason` per line; lines
    starting with `#` and blank lines are comments."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        mutant, sep, reason = text.partition(" # ")
        if not sep or not reason.strip() or " " in mutant.strip():
            raise TitoError(f"{path}:{n}: expected `MUTANT-ID  # reason`, got {text!r}",
                            "every equivalent mutant needs a one-line reason")
        out[mutant.strip()] = reason.strip()
    return out


def load_floors(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    return {str(k): float(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def floor_of(score: float) -> float:
    """A measured score rounded down to a whole percent: the floor it supports."""
    return int(score * 100 + 1e-9) / 100


def raise_floors(path: Path, report: "Report") -> dict[str, float]:
    """Raise each measured module's floor to its score (rounded down); never lower one."""
    floors = load_floors(path)
    for r in report.modules:
        if r.score is not None and floor_of(r.score) > floors.get(r.module.id, 0.0):
            floors[r.module.id] = floor_of(r.score)
    floors = dict(sorted(floors.items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(floors, indent=1) + "\n", encoding="utf-8")
    return floors


# ---------------------------------------------------------------------------------------------
# Judging mutants
# ---------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed / hang / survived / error
    by: str = ""  # the check that killed it (or why it could not be judged)
    seconds: float = 0.0
    equivalent: str | None = None  # the reviewed reason, when equivalent.txt lists it


@dataclass
class ModuleScore:
    module: Module
    generated: int  # every mutant of the module (the sample is drawn from these)
    outcomes: list[Outcome] = field(default_factory=list)
    floor: float | None = None
    reference_seconds: float = 0.0
    limit: float = 0.0
    problems: list[str] = field(default_factory=list)

    def _with(self, *status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in status]

    @property
    def killed(self) -> list[Outcome]:  # hangs included
        return self._with("killed", "hang")

    @property
    def hangs(self) -> list[Outcome]:
        return self._with("hang")

    @property
    def equivalent(self) -> list[Outcome]:
        return [o for o in self._with("survived") if o.equivalent]

    @property
    def survivors(self) -> list[Outcome]:
        return [o for o in self._with("survived") if not o.equivalent]

    @property
    def score(self) -> float | None:
        """killed / (total - equivalent); None when nothing was judged."""
        judged = len(self.outcomes) - len(self.equivalent) - len(self._with("error"))
        return len(self.killed) / judged if judged else None

    @property
    def seconds(self) -> float:
        """Worker time: the reference's run and every mutant's."""
        return self.reference_seconds + sum(o.seconds for o in self.outcomes)


@dataclass
class Report:
    modules: list[ModuleScore]
    seconds: float  # wall time of the whole run
    jobs: int
    sample: int | None
    seed: int

    @property
    def score(self) -> float | None:
        judged = sum(len(r.outcomes) - len(r.equivalent) - len(r._with("error")) for r in self.modules)
        return sum(len(r.killed) for r in self.modules) / judged if judged else None

    @property
    def problems(self) -> list[str]:
        return [f"{r.module}: {p}" for r in self.modules for p in r.problems]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self, src: Sources | None = None) -> dict:
        def mutant(o: Outcome, r: ModuleScore) -> dict:
            d = {"id": o.mutant.id, "function": o.mutant.function, "operator": o.mutant.operator,
                 "line": o.mutant.line, "what": o.mutant.what, "status": o.status,
                 "seconds": round(o.seconds, 2)}
            if o.by:
                d["by"] = o.by
            if o.equivalent:
                d["equivalent"] = o.equivalent
            if src is not None and o.status == "survived":
                d["diff"] = o.mutant.diff(src.reference_text(r.module), r.module.file_name)
            return d

        return {
            "score": self.score, "seconds": round(self.seconds, 1), "jobs": self.jobs,
            "sample": self.sample, "seed": self.seed, "problems": self.problems,
            "modules": [{
                "module": r.module.id, "name": r.module.name, "generated": r.generated,
                "mutants": len(r.outcomes), "killed": len(r.killed), "hangs": len(r.hangs),
                "survived": len(r.survivors), "equivalent": len(r.equivalent), "score": r.score,
                "floor": r.floor, "seconds": round(r.seconds, 1), "limit": round(r.limit, 1),
                "reference_seconds": round(r.reference_seconds, 2), "problems": r.problems,
                "survivors": [mutant(o, r) for o in r.survivors],
                "equivalents": [mutant(o, r) for o in r.equivalent],
                "others": [mutant(o, r) for o in r.outcomes if o.status != "survived"],
            } for r in self.modules]}


# For the check runs of this process: stop at the first failure (-x), and no assertion rewriting.
# Rewriting only makes failure messages richer, never changes a verdict, and with no bytecode
# cache (tito.checkrun.RUN_ENV) the check file is rewritten again on every mutant's run.
PYTEST_OPTIONS = "-x --assert=plain"


@contextmanager
def _judging():
    """PYTEST_OPTIONS for the check runs (tito.checkrun passes the environment on)."""
    old = os.environ.get("PYTEST_ADDOPTS")
    os.environ["PYTEST_ADDOPTS"] = f"{old or ''} {PYTEST_OPTIONS}".strip()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTEST_ADDOPTS", None)
        else:
            os.environ["PYTEST_ADDOPTS"] = old


def check_tasks(check_file: Path) -> list[tuple[str, list[str]]]:
    """(test name, its @pytest.mark.task names) for every check in a check file."""
    tree = ast.parse(check_file.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            marks = [a.value for d in node.decorator_list if isinstance(d, ast.Call)
                     and isinstance(d.func, ast.Attribute) and d.func.attr == "task"
                     for a in d.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            out.append((node.name, marks))
    return out


def task_for(function: str, tasks: list[tuple[str, list[str]]]) -> str | None:
    """The TITO_CHECK_TASK that selects the checks of `function` (or of its class), if any."""
    for want in dict.fromkeys([function, function.split(".")[0]]):
        w = want.lower()
        if any(w in [m.lower() for m in marks] or w in name.lower() for name, marks in tasks):
            return want
    return None


def _first_failure(report: checkrun.CheckReport) -> str | None:
    """The name of the check that failed (or why the checks did not run), None if all passed."""
    if report.ok:
        return None
    failures = report.failures()
    if failures:
        return failures[0].name
    return report.problem() or f"pytest exit code {report.exit_code}"


def judge(src: Sources, m: Module, mutant: Mutant, source: str, task: str | None,
          limit: float) -> Outcome:
    """Run `m`'s checks on the package with this mutant in place: the checks of its function
    first (most mutants die there), then all of them."""
    files = _files(src, m, stub=False)
    files[m.file_name] = mutant.apply(source)
    start = time.monotonic()
    try:
        if task:
            first = checkrun.run_checks(m, files, src=src, task=task, timeout=limit)
            if first.results or first.collect_errors:  # the task selected something
                by = _first_failure(first)
                if by:
                    return Outcome(mutant, "killed", by, time.monotonic() - start)
        by = _first_failure(checkrun.run_checks(m, files, src=src, timeout=limit))
    except TitoError as e:
        status = "hang" if "did not finish" in e.message else "error"
        return Outcome(mutant, status, e.message, time.monotonic() - start)
    return Outcome(mutant, "killed" if by else "survived", by or "", time.monotonic() - start)


def sample_of(mutants: list[Mutant], n: int, seed: int, module: str) -> list[Mutant]:
    """A seeded random sample of n mutants of one module (the same for the same seed and code)."""
    order = list(range(len(mutants)))
    random.Random(f"{seed}:{module}").shuffle(order)
    return [mutants[i] for i in sorted(order[:n])]  # nested: a larger n adds to a smaller one


def run(src: Sources | None = None, only: list[Module] | None = None, jobs: int = 2,
        sample: int | None = None, seed: int = DEFAULT_SAMPLE_SEED, timeout: float | None = None,
        data: Path | None = None, progress=None) -> Report:
    """Generate, sample (if `sample`), and judge the mutants of every selected built module.

    `progress(outcome, done, total)` is called in this thread after each mutant is judged."""
    src = src or Sources.installed()
    data = data if data is not None else data_dir()
    equivalents = load_equivalents(data / "equivalent.txt")
    floors = load_floors(data / "floors.json")
    started = time.monotonic()
    scores, work = [], []
    for m in only or registry.built_modules():
        if not m.built:
            raise TitoError(f"module {m} is not built yet: there is no solution to mutate")
        source = src.reference_text(m)
        every = generate(source, m.id, str(src.reference_file(m)))
        chosen = sample_of(every, sample, seed, m.id) if sample else every
        r = ModuleScore(m, len(every), floor=floors.get(m.id))
        ids = {x.id for x in every}
        r.problems += [f"equivalent.txt names a mutant that no longer exists: {i} (remove it)"
                       for i in equivalents if i.startswith(f"{m.id}:") and i not in ids]
        scores.append(r)
        work.append((r, source, chosen))

    with _judging(), ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        refs = [pool.submit(checkrun.run_checks, r.module, _files(src, r.module, stub=False),
                            src=src) for r, _, _ in work]
        runs: dict = {}
        for (r, source, chosen), ref in zip(work, refs):
            try:
                baseline = ref.result()
            except TitoError as e:
                r.problems.append(f"the reference's own check run failed: {e.message}")
                continue
            if _first_failure(baseline):
                r.problems.append(f"the reference fails its own checks ({_first_failure(baseline)}): "
                                  "no mutant can be judged")
                continue
            r.reference_seconds = baseline.seconds
            r.limit = timeout or max(MIN_LIMIT, LIMIT_FACTOR * baseline.seconds)
            tasks = check_tasks(src.check_file(r.module))
            for mutant in chosen:
                future = pool.submit(judge, src, r.module, mutant, source,
                                     task_for(mutant.function, tasks), r.limit)
                runs[future] = r
        try:
            for done, future in enumerate(as_completed(runs), 1):
                outcome = future.result()
                outcome.equivalent = equivalents.get(outcome.mutant.id)
                runs[future].outcomes.append(outcome)
                if progress:
                    progress(outcome, done, len(runs))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    for r in scores:
        r.outcomes.sort(key=lambda o: (o.mutant.start, o.mutant.end, o.mutant.operator, o.mutant.index))
        for o in r.outcomes:
            if o.status == "error":
                r.problems.append(f"{o.mutant.id}: could not be judged: {o.by}")
            if o.equivalent and o.status != "survived":
                r.problems.append(f"{o.mutant.id} is listed as equivalent but the checks kill it "
                                  f"({o.by}): remove it from equivalent.txt")
        if r.floor is not None and r.score is not None and r.score < r.floor:
            r.problems.append(f"mutation score {r.score:.1%} is below its floor {r.floor:.0%}: "
                              "strengthen the checks (the survivors are the to-do list)")
    return Report(scores, time.monotonic() - started, jobs, sample, seed)
