"""Milestone 05 (the Transformer): its measurements, its corpus, and quick runs through the CLI.

The seeded bugs that must fail it live in tests/test_lang_seeded_bugs.py.
"""

from __future__ import annotations

import ast
import math

import numpy as np
import pytest
from test_milestones import make_ws, tito

from tito import registry
from tito.milestones import m05_transformer as m05

TO_12 = tuple(f"{i:02d}" for i in range(1, 13))


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TITO_WORKSPACE", raising=False)


# ---------------------------------------------------------------------------------------------
# The measurements made outside the learner's code
# ---------------------------------------------------------------------------------------------
def test_bigram_loss_is_the_counted_cross_entropy():
    train = np.array([0, 1, 0, 1, 0, 1, 0])  # 0 -> 1 three times, 1 -> 0 three times
    # add-one smoothing over 2 tokens: P(1 | 0) = (3 + 1) / (3 + 2) = 0.8
    assert m05.bigram_loss(train, np.array([0, 1]), 2) == pytest.approx(-math.log(0.8))
    assert m05.bigram_loss(train, np.array([0, 0]), 2) == pytest.approx(-math.log(0.2))


def test_attention_entropy_ratio_is_one_for_uniform_and_small_for_sharp_attention():
    T = 6
    uniform = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]  # row i: 1 / (i + 1)
    assert m05.attention_entropy_ratio([uniform[None, None]]) == pytest.approx(1.0)
    sharp = np.eye(T)[None, None]  # every query attends to itself only
    assert m05.attention_entropy_ratio([sharp]) == 0.0


def test_words_known_counts_words_of_the_text():
    assert m05.words_known("the cat dog's xyzzy", "The cat and the dog's bone") == 0.75
    assert m05.words_known("", "anything") == 0.0


def test_judge_counts_parses_compiles_and_copies():
    corpus = {"def f(x):\n    return x"}
    samples = ["def f(x):\n    return x",  # a copy: does not count as parsed
               "def g(a, b):\n    return a + b",  # parses and compiles
               "def h(a, a):\n    return a",  # parses, but duplicate arguments do not compile
               "def k(x:\n    return (x"]  # does not parse
    assert m05.judge(samples, corpus) == {"parse_rate": 0.5, "compile_rate": 0.25, "copy_rate": 0.25}


def test_stdlib_corpus_drops_docstrings_decorators_tests_and_long_functions(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text(
        'class C:\n    @property\n    def size(self):\n        """Doc."""\n        return 3\n\n'
        "def only_doc():\n    'Just a docstring.'\n\n"
        "def long():\n    return " + " + ".join(["1"] * 200) + "\n"
        "def caf\u00e9():\n    return 1\n")
    (tmp_path / "pkg" / "b.py").write_text("def size(self):\n    return 3\n")  # a duplicate
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "t.py").write_text("def in_a_test_folder():\n    pass\n")
    (tmp_path / "pkg" / "broken.py").write_text("def (:\n")
    got = m05.stdlib_functions(tmp_path)
    assert got == ["def only_doc():\n    pass", "def size(self):\n    return 3"]
    assert all(ast.parse(f) for f in got)


# ---------------------------------------------------------------------------------------------
# Through the CLI
# ---------------------------------------------------------------------------------------------
def test_every_part_passes_quick_on_the_reference(tmp_path):
    """`tito milestone test 05 --reference`: the three quick parts, every condition measured."""
    from tinytorch import datasets

    if "missing" in {s for _, _, s in datasets.check("tinyshakespeare")}:
        pytest.skip("Tiny Shakespeare not found (set TINYTORCH_DATA; this test never downloads)")
    code, out = tito("milestone", "test", "05", "--reference", cwd=tmp_path)
    assert code == 0, out
    for n in (1, 2, 3):
        assert f"Part {n}" in out
    assert "✗" not in out and "nothing recorded" in out
    assert "held-out strings exactly right" in out and "ROMEO:" in out and "sampled functions" in out
    parts = registry.get_milestone("05").parts
    assert len(parts) == 3 and all(p.conditions for p in parts)


def test_locked_until_module_13_and_then_it_says_what_to_do(tmp_path):
    ws = make_ws(tmp_path / "ws", TO_12)
    code, out = tito("milestone", "run", "05", cwd=ws.root)
    assert code == 1 and "locked" in out.lower() and "13" in out, out
    assert not (ws.root / "runs").exists()


def test_a_prompt_the_tokenizer_cannot_encode_is_one_clear_line(tmp_path):
    from tinytorch import datasets

    if "missing" in {s for _, _, s in datasets.check("tinyshakespeare")}:
        pytest.skip("Tiny Shakespeare not found (set TINYTORCH_DATA)")
    ws = make_ws(tmp_path / "ws", TO_12 + ("13",))
    code, out = tito("milestone", "run", "05", "--part", "2", "--quick", "--prompt", "caf\u00e9 \u2603",
                     cwd=ws.root)
    assert code == 1 and "--prompt" in out and "do not occur in Tiny Shakespeare" in out, out
    assert "Traceback" not in out and "culprit" not in out.lower()


def test_prompt_and_temperature_belong_to_milestone_05(tmp_path):
    code, out = tito("milestone", "run", "03", "--reference", "--prompt", "ROMEO:", cwd=tmp_path)
    assert code == 1 and "milestone 03 takes no --prompt" in out and "only milestone 05" in out, out
    assert "Traceback" not in out
