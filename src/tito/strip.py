"""Solution stripping: the reference module -> the learner's file.

A reference module marks each piece of the answer with nbgrader's markers, inside a function body,
with the hints for the learner just above the region:

    def forward(self, x):
        # HINT: x @ W.T + b
        ### BEGIN SOLUTION
        return x @ self.weight.T + self.bias
        ### END SOLUTION

Stripping replaces every region, markers included, with exactly what nbgrader's
`generate_assignment` puts there (its default `ClearSolutions.code_stub`), at the marker's indent:

    def forward(self, x):
        # HINT: x @ W.T + b
        # YOUR CODE HERE
        raise NotImplementedError()

so the file tito gives a learner and the notebook nbgrader releases are the same, hints kept.
Everything outside the regions (jupytext `# %%` cells included) is left byte for byte. A failing
check names the function from the stub's traceback frame (see tito/checks/conftest.py).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from tito.errors import TitoError

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")  # nbgrader's default code stub
_MARKER_LIKE = re.compile(r"#+\s*(BEGIN|END)\s+SOLUTION", re.IGNORECASE)


class StripError(TitoError):
    """A reference file whose solution markers cannot be stripped (a maintainer's bug)."""


@dataclass(frozen=True)
class Region:
    """One solution region: lines begin..end (0-based, the marker lines themselves)."""

    begin: int
    end: int
    indent: str
    qualname: str
    hints: tuple[str, ...]  # `# HINT` lines inside the region: dropped by nbgrader, so a problem
    body: tuple[str, ...]  # the solution lines between the markers (hints excluded)


def _is_hint(line: str) -> bool:
    return line.strip().startswith("# HINT")


def _functions(tree: ast.AST):
    """Yield (qualname, first line, last line) for every function, nested ones included."""
    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    yield name, child.lineno, child.end_lineno
                yield from walk(child, name + ".")
            else:
                yield from walk(child, prefix)
    yield from walk(tree, "")


def function_at(source: str, lineno: int) -> str | None:
    """The qualified name of the innermost function containing 1-based line `lineno`, if any."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    best = None
    for name, first, last in _functions(tree):
        if first <= lineno <= last and (best is None or first >= best[1]):
            best = (name, first)
    return best[0] if best else None


def regions(source: str, filename: str = "<module>") -> list[Region]:
    """Find and validate every solution region of a reference source."""
    lines = source.splitlines()
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as e:
        raise StripError(f"{filename}:{e.lineno}: the reference does not parse: {e.msg}") from e
    funcs = list(_functions(tree))
    found, start = [], None
    for i, line in enumerate(lines):
        text = line.strip()
        if text == BEGIN:
            if start is not None:
                raise StripError(f"{filename}:{i + 1}: nested '{BEGIN}' (region opened at line {start + 1})")
            start = i
        elif text == END:
            if start is None:
                raise StripError(f"{filename}:{i + 1}: '{END}' without a matching '{BEGIN}'")
            found.append((start, i))
            start = None
        elif _MARKER_LIKE.search(text) and text.startswith("#"):
            raise StripError(f"{filename}:{i + 1}: malformed solution marker {text!r}",
                             f"use exactly '{BEGIN}' and '{END}'")
    if start is not None:
        raise StripError(f"{filename}:{start + 1}: '{BEGIN}' is never closed")

    out = []
    for b, e in found:
        # the END marker may trail the function's last statement (comments are not in the AST), so
        # the region belongs to the innermost function whose statements include the BEGIN line
        enclosing = [(name, first) for name, first, last in funcs if first < b + 1 <= last]
        if not enclosing:
            raise StripError(f"{filename}:{b + 1}: solution region is not inside a function body")
        qualname = max(enclosing, key=lambda t: t[1])[0]
        inner = lines[b + 1:e]
        indent = lines[b][: len(lines[b]) - len(lines[b].lstrip())]
        out.append(Region(b, e, indent, qualname,
                          tuple(l for l in inner if _is_hint(l)),
                          tuple(l for l in inner if not _is_hint(l))))
    return out


def strip_source(source: str, filename: str = "<module>") -> str:
    """The learner's version of `source`: each region -> nbgrader's stub, at the region's indent."""
    lines = source.splitlines()
    out: list[str] = []
    pos = 0
    for r in regions(source, filename):
        out.extend(lines[pos:r.begin])
        out.extend(r.indent + stub for stub in STUB)
        pos = r.end + 1
    out.extend(lines[pos:])
    text = "\n".join(out) + ("\n" if source.endswith("\n") else "")
    try:
        compile(text, filename, "exec")
    except SyntaxError as e:
        raise StripError(f"{filename}:{e.lineno}: the stripped file does not compile: {e.msg}") from e
    return text


def solution_functions(source: str) -> list[str]:
    """The functions the learner has to write, in file order, without repeats."""
    names: list[str] = []
    for r in regions(source):
        if r.qualname not in names:
            names.append(r.qualname)
    return names


def leaks(reference: str, stripped: str) -> list[str]:
    """Solution lines of `reference` that appear in `stripped` (should always be empty).

    A line counts when it is non-blank, not a hint, and not also part of the given code outside
    the solution regions (a `return out` that the reference has outside a region is not a leak).
    Leftover markers count too.
    """
    def norm(line: str) -> str:
        return " ".join(line.split())

    rs = regions(reference)
    inside = {i for r in rs for i in range(r.begin, r.end + 1)}
    ref_lines = reference.splitlines()
    given = {norm(l) for i, l in enumerate(ref_lines) if i not in inside}
    secret = {norm(l) for r in rs for l in r.body if norm(l)} - given
    found = []
    for line in stripped.splitlines():
        n = norm(line)
        if n in secret or _MARKER_LIKE.search(n):
            found.append(line.strip())
    return found
