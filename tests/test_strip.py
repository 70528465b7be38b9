"""Solution stripping on fixture sources, and on every real reference module present."""

import ast
import textwrap

import pytest

from tito import registry
from tito.strip import StripError, function_at, leaks, regions, solution_functions, strip_source
from tito.workspace import Sources

SOURCE = textwrap.dedent('''\
    # %% [markdown]
    # # Module 99 - fixture

    # %%
    """A fixture module."""
    import numpy as np


    def top(x):
        """Docstring stays."""
        y = x + 1
        # HINT: multiply
        ### BEGIN SOLUTION
        z = y * 2  # the secret
        return z
        ### END SOLUTION


    class Layer:
        scale = 3

        @staticmethod
        def make():
            ### BEGIN SOLUTION
            return Layer()
            ### END SOLUTION

        def forward(self, x):
            if x is None:
                ### BEGIN SOLUTION
                x = np.zeros(3)
                ### END SOLUTION
            def inner(v):
                ### BEGIN SOLUTION
                return v * self.scale
                ### END SOLUTION
            return inner(x)
    ''')


def test_regions_and_qualified_names():
    rs = regions(SOURCE)
    assert [r.qualname for r in rs] == ["top", "Layer.make", "Layer.forward", "Layer.forward.inner"]
    assert rs[0].hints == ()  # the hint stands above the region, where nbgrader keeps it too
    assert solution_functions(SOURCE) == ["top", "Layer.make", "Layer.forward", "Layer.forward.inner"]


def test_strip_replaces_each_region_at_its_indentation():
    out = strip_source(SOURCE)
    ast.parse(out)
    assert "z = y * 2" not in out and "np.zeros(3)" not in out and "SOLUTION" not in out
    assert '    # HINT: multiply\n    # YOUR CODE HERE\n    raise NotImplementedError()\n' in out
    assert '        # YOUR CODE HERE\n        raise NotImplementedError()\n\n    def forward' in out
    assert '            # YOUR CODE HERE\n            raise NotImplementedError()\n        def inner' in out
    assert '            # YOUR CODE HERE\n            raise NotImplementedError()\n        return inner' in out
    # everything outside the regions is untouched: cells, docstrings, given code
    assert out.startswith("# %% [markdown]\n# # Module 99 - fixture\n\n# %%\n")
    assert '"""Docstring stays."""\n    y = x + 1\n' in out and "scale = 3" in out
    assert leaks(SOURCE, out) == []


def test_stripped_fixture_runs_and_fails_loudly():
    ns: dict = {}
    exec(compile(strip_source(SOURCE), "fixture", "exec"), ns)
    with pytest.raises(NotImplementedError, match=r"^$"):
        ns["top"](1)


def test_leaks_are_found():
    out = strip_source(SOURCE)
    planted = out.replace("raise NotImplementedError()", "z = y * 2  # the secret", 1)
    assert leaks(SOURCE, planted) == ["z = y * 2  # the secret"]
    assert leaks(SOURCE, out + "\n# ### END SOLUTION\n")


def test_given_lines_identical_to_solution_lines_are_not_leaks():
    src = "def f(out):\n    ### BEGIN SOLUTION\n    return out\n    ### END SOLUTION\n\n" \
          "def g(out):\n    return out\n"
    assert leaks(src, strip_source(src)) == []


@pytest.mark.parametrize("bad,msg", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    ### END SOLUTION\n", "without a matching"),
    ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n",
     "nested"),
    ("### BEGIN SOLUTION\nX = 1\n### END SOLUTION\n", "not inside a function"),
    ("def f():\n    ## BEGIN SOLUTION\n    return 1\n", "malformed"),
    ("def f(:\n    pass\n", "does not parse"),
])
def test_broken_markers_are_errors(bad, msg):
    with pytest.raises(StripError, match=msg):
        strip_source(bad)


def test_region_that_would_not_compile_is_reported():
    src = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n  x = 2\n"
    with pytest.raises(StripError):
        strip_source(src)


def test_function_at():
    assert function_at(SOURCE, 13) == "top"
    assert function_at(SOURCE, 35) == "Layer.forward.inner"
    assert function_at(SOURCE, 1) is None
    assert function_at("def (:", 1) is None


def _present_modules():
    src = Sources.installed()
    return [m for m in registry.built_modules() if src.reference_file(m).exists()]


@pytest.mark.parametrize("m", _present_modules(), ids=str)
def test_real_reference_strips_cleanly(m):
    src = Sources.installed()
    text = src.reference_text(m)
    out = src.stripped_text(m)
    assert solution_functions(text), f"{m} has no solution region"
    assert leaks(text, out) == []
    compile(out, m.file_name, "exec")
    assert "    # YOUR CODE HERE\n" in out and "raise NotImplementedError()" in out
