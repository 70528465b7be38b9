"""The registry: ids, lookups, the prerequisite graph, unlocks and victory conditions."""

import math

import pytest

from tito import registry
from tito.errors import TitoError
from tito.registry import Condition, evaluate, get_milestone, get_module


def ids(a, b):
    return {f"{i:02d}" for i in range(a, b + 1)}


def test_twenty_modules_in_course_order():
    names = [m.name for m in registry.MODULES]
    assert names == ["tensor", "activations", "layers", "losses", "dataloader", "autograd",
                     "optimizers", "training", "convolutions", "tokenization", "embeddings",
                     "attention", "transformers", "profiling", "quantization", "compression",
                     "memoization", "acceleration", "benchmarking", "capstone"]
    assert [m.id for m in registry.MODULES] == [f"{i:02d}" for i in range(1, 21)]
    tiers = {m.id: m.tier for m in registry.MODULES}
    assert {tiers[i] for i in ids(1, 8)} == {"Foundation"}
    assert {tiers[i] for i in ids(9, 13)} == {"Architecture"}
    assert {tiers[i] for i in ids(14, 19)} == {"Optimization"}
    assert tiers["20"] == "Capstone"
    built = {m.id for m in registry.built_modules()}
    assert ids(1, 13) <= built  # the foundation and architecture tiers; later tiers land one by one
    assert all(set(m.prereqs) <= built for m in registry.built_modules()), "built on unbuilt modules"


def test_registry_is_consistent():
    assert registry.consistency_problems() == []


@pytest.mark.parametrize("text", ["3", "03", "03_layers", "layers", "LAYERS", " 3 ", 3])
def test_module_ids_accepted(text):
    assert get_module(text).name == "layers"


def test_derived_paths():
    m = get_module("layers")
    assert (m.key, m.file_name, m.package_module) == ("03_layers", "layers.py", "tinytorch.layers")
    assert m.check_file == "test_03_layers.py"


@pytest.mark.parametrize("text,close", [("layer", "layers"), ("tensr", "tensor"),
                                        ("autograde", "autograd")])
def test_unknown_module_suggests_close_ones(text, close):
    with pytest.raises(TitoError) as e:
        get_module(text)
    assert "unknown module" in e.value.message and close in e.value.hint


@pytest.mark.parametrize("text", ["0", "21", "xyz", ""])
def test_unknown_module(text):
    with pytest.raises(TitoError, match="unknown module"):
        get_module(text)


@pytest.mark.parametrize("text,slug", [("1", "perceptron"), ("01", "perceptron"), ("xor", "xor"),
                                       ("3", "mlp"), ("cnn", "cnn"), ("05", "transformer"),
                                       ("mlperf", "mlperf")])
def test_milestone_ids_accepted(text, slug):
    assert get_milestone(text).slug == slug


def test_unknown_milestone_suggests():
    with pytest.raises(TitoError) as e:
        get_milestone("perceptorn")
    assert "perceptron" in e.value.hint


def test_milestones_as_in_the_issue():
    req = {ms.id: set(ms.requires) for ms in registry.MILESTONES}
    assert req == {"01": ids(1, 3), "02": ids(1, 3), "03": ids(1, 8), "04": ids(1, 9),
                   "05": ids(1, 8) | ids(10, 13), "06": ids(1, 9) | ids(14, 19)}
    assert [ms.year for ms in registry.MILESTONES] == [1958, 1969, 1986, 1998, 2017, 2018]
    xor = get_milestone("xor")
    assert xor.part(2).needs == tuple(sorted(ids(4, 7)))
    assert set(xor.modules_for(xor.part(2))) == ids(1, 7)
    with pytest.raises(TitoError):
        xor.part(3)


def test_prerequisites_are_a_dag_in_course_order():
    for m in registry.MODULES:
        assert all(int(p.id) < int(m.id) for p in registry.all_prereqs(m))
    assert [p.id for p in registry.all_prereqs(get_module("08"))] == sorted(ids(1, 7))
    assert registry.missing_prereqs(get_module(3), {"01"}) == [get_module(2)]


def test_unlocks_follow_the_registry_exactly():
    """Completing 01..13 in order unlocks 01+02 after 03, 02 part 2 after 07, 03 after 08, 04 after 09,
    05 (all three parts) after 13."""
    done: set[str] = set()
    unlocked = {}
    for m in map(get_module, sorted(ids(1, 13))):
        new = registry.newly_runnable(done, done | {m.id})
        done.add(m.id)
        unlocked[m.id] = [(ms.id, p.number) for ms, p in new]
    assert unlocked == {"01": [], "02": [], "03": [("01", 1), ("02", 1)], "04": [], "05": [],
                        "06": [], "07": [("02", 2)], "08": [("03", 1), ("03", 2)],
                        "09": [("04", 1), ("04", 2)], "10": [], "11": [], "12": [],
                        "13": [("05", 1), ("05", 2), ("05", 3)]}


def test_next_module_and_coming_modules_block_nothing_else():
    assert registry.next_module(set()).id == "01"
    assert registry.next_module(ids(1, 3)).id == "04"
    assert registry.next_module(ids(1, 9)).id == "10"
    unbuilt = [m for m in registry.MODULES if not m.built]
    if unbuilt:  # the first module that is not built yet is never "next": it is coming
        first = unbuilt[0]
        assert registry.next_module({m.id for m in registry.MODULES if int(m.id) < int(first.id)}) is None
    # milestone 05 needs only built modules: coming ones do not block it
    assert registry.milestone_missing(get_milestone(5), ids(1, 13) - {"09"}) == []
    assert [m.id for m in registry.milestone_missing(get_milestone(5), ids(1, 9))] == sorted(ids(10, 13))


def test_evaluate_conditions():
    conds = (Condition("acc", ">=", 0.98, "acc", quick_target=0.9),
             Condition("crisis", "<=", 0.75, "crisis"),
             Condition("flag", "==", 1, "flag"))
    res = evaluate(conds, {"acc": 0.95, "crisis": 0.75, "flag": True})
    assert [r.passed for r in res] == [False, True, True]
    assert res[0].value == 0.95 and res[0].target == 0.98
    assert [r.passed for r in evaluate(conds, {"acc": 0.95, "crisis": 0.5, "flag": 1}, quick=True)] \
        == [True, True, True]


@pytest.mark.parametrize("bad", [None, math.nan, "high", [1]])
def test_missing_or_nan_metric_fails(bad):
    metrics = {} if bad is None else {"acc": bad}
    (r,) = evaluate([Condition("acc", ">=", 0.5, "acc")], metrics)
    assert not r.passed


def test_condition_rejects_unknown_operator():
    with pytest.raises(ValueError):
        Condition("acc", "=>", 1, "typo")
