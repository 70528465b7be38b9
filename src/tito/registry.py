"""The course registry: every module and milestone, in one place.

This file is the ONLY place where module ids, names, files, prerequisites, tiers and milestones
are written down. Everything else (status, unlocks, file paths, which checks to run, the next
step) is derived from it by the functions at the bottom.

    get_module("3") == get_module("03") == get_module("03_layers") == get_module("layers")
    runnable_parts({"01", "02", "03"})  ->  [(m01, part 1), (m02, part 1)]
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field

from tito.errors import TitoError

TIERS = ("Foundation", "Architecture", "Optimization", "Capstone")


# ---------------------------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Module:
    """One course module: one file of the framework, e.g. 03 layers -> tinytorch/layers.py."""

    id: str  # "03"
    name: str  # "layers": the file is tinytorch/<name>.py
    title: str
    tier: str
    teaches: str
    prereqs: tuple[str, ...] = ()  # direct prerequisites (module ids)
    built: bool = False  # False: the reference does not exist yet ("coming")

    @property
    def key(self) -> str:
        """'03_layers': the folder name in a workspace and the label in stub errors."""
        return f"{self.id}_{self.name}"

    @property
    def file_name(self) -> str:
        return f"{self.name}.py"

    @property
    def package_module(self) -> str:
        return f"tinytorch.{self.name}"

    @property
    def check_file(self) -> str:
        """The module's checks, relative to the `tito.checks` package directory."""
        return f"test_{self.key}.py"

    def __str__(self) -> str:
        return f"{self.id} {self.name}"


_OPS = {
    ">=": lambda v, t: v >= t,
    "<=": lambda v, t: v <= t,
    ">": lambda v, t: v > t,
    "<": lambda v, t: v < t,
    "==": lambda v, t: v == t,
}


@dataclass(frozen=True)
class Condition:
    """A victory condition, checked against a measured metric: `metrics[metric] <op> target`.

    Booleans count as 1.0/0.0, so `Condition("grads_ok", "==", 1, ...)` checks a flag.
    `quick_target`, when set, replaces `target` for the short `--quick` variant of a run.
    """

    metric: str
    op: str
    target: float
    label: str
    quick_target: float | None = None

    def __post_init__(self):
        if self.op not in _OPS:
            raise ValueError(f"unknown comparison {self.op!r} in condition {self.label!r}")

    def target_for(self, quick: bool = False) -> float:
        return self.quick_target if quick and self.quick_target is not None else self.target


def format_value(metric: str, value, op: str = "", target: float | None = None) -> str:
    """A measured value as every report shows it: flags yes/no, accuracies and rates in %."""
    if value is None:
        return "missing"
    if op == "==" and target in (0, 1):
        return "yes" if value else "no"
    if "acc" in metric or metric == "loss_drop" or metric.endswith(("_exact", "_rate")):
        return f"{value * 100:.2f}%"
    return f"{value:.4g}"


def format_target(metric: str, op: str, target: float) -> str:
    """A condition's target as every report shows it: '>= 98.00%', 'yes'."""
    if op == "==" and target in (0, 1):
        return "yes" if target else "no"
    return f"{op} {format_value(metric, target)}"


@dataclass(frozen=True)
class Result:
    """One evaluated condition: the measured value (None if missing) and whether it passed."""

    condition: Condition
    value: float | None
    passed: bool
    target: float


def evaluate(conditions, metrics: dict, quick: bool = False) -> list[Result]:
    """Evaluate every condition against a metrics dict. Missing, non-numeric or NaN -> failed."""
    results = []
    for c in conditions:
        raw = metrics.get(c.metric)
        target = c.target_for(quick)
        try:
            value = float(raw) if raw is not None else None
        except (TypeError, ValueError):
            value = None
        passed = value is not None and not math.isnan(value) and _OPS[c.op](value, target)
        results.append(Result(c, value, bool(passed), target))
    return results


@dataclass(frozen=True)
class Part:
    """One runnable part of a milestone, e.g. milestone 02 part 2 'backprop solves XOR'."""

    number: int  # 1, 2, ...
    name: str
    needs: tuple[str, ...] = ()  # modules needed on top of the milestone's `requires`
    script: str = ""  # dotted module path of the milestone script
    entry: str = "main"  # function in `script` that runs this part
    conditions: tuple[Condition, ...] = ()
    limit_s: int = 600  # time limit of a full run (seconds); `--timeout` overrides
    quick_limit_s: int = 180  # time limit of a `--quick` run


@dataclass(frozen=True)
class Milestone:
    """A moment of ML history the learner recreates with their own code."""

    id: str  # "01"
    slug: str  # "perceptron"
    year: int
    title: str
    people: str
    context: str  # the historical significance
    what: str  # what the learner will do
    requires: tuple[str, ...]  # modules needed to run the milestone at all (its first part)
    parts: tuple[Part, ...] = field(default_factory=tuple)
    options: tuple[str, ...] = ()  # run options it takes (`tito milestone run 05 --prompt ...`)

    def part(self, number: int | str) -> Part:
        text = str(number).strip()
        for p in self.parts:
            if text.isdigit() and int(text) == p.number:
                return p
        raise TitoError(f"milestone {self.id} has no part {number!r}",
                        f"its parts: {', '.join(str(p.number) for p in self.parts)}")

    def modules_for(self, part: Part) -> tuple[str, ...]:
        """Every module a part needs: the milestone's requirements plus the part's own."""
        return tuple(sorted(set(self.requires) | set(part.needs)))

    def __str__(self) -> str:
        return f"{self.id} {self.title} ({self.year})"


# Conditions shared by every part that trains (issue: loss falls, gradients flow, weights move).
def _trains(first_pct: float = 0.5) -> tuple[Condition, ...]:
    return (
        Condition("loss_drop", ">=", first_pct, "loss falls by at least 50% from its first value"),
        Condition("grads_ok", "==", 1, "every parameter received a finite, non-zero gradient"),
        Condition("weights_changed", "==", 1, "the weights changed during training"),
    )


# The independent probes of a transformer (milestone 05), measured outside the learner's training.
def _probes(attention: bool = False) -> tuple[Condition, ...]:
    return (
        Condition("causal_leak", "<=", 1e-4, "causal: later tokens move no earlier logit "
                  "(max change)"),
        Condition("position_spread", ">=", 1e-2, "uses positions: a repeated token's logits "
                  "differ by position"),
        *((Condition("attn_entropy_ratio", "<=", 0.9, "attention is not uniform (mean entropy "
                     "/ uniform entropy)"),) if attention else ()),
        Condition("attention_formula_err", "<=", 1e-4, "attention equals softmax(q k^T / sqrt(d)"
                  " + mask) v (max error)"),
        Condition("grads_match", "==", 1, "a small GPT's gradients match finite differences"),
    )


def _ids(a: int, b: int) -> tuple[str, ...]:
    return tuple(f"{i:02d}" for i in range(a, b + 1))


# ---------------------------------------------------------------------------------------------
# The modules (course order is fixed)
# ---------------------------------------------------------------------------------------------
F, A, O, C = TIERS
MODULES: tuple[Module, ...] = (
    Module("01", "tensor", "Tensor", F,
           "an n-dimensional float32 array: creation, broadcasting arithmetic, matmul, "
           "reductions, views, indexing", (), True),
    Module("02", "activations", "Activations", F,
           "ReLU, LeakyReLU, Sigmoid, Tanh, GELU and numerically stable Softmax/LogSoftmax",
           ("01",), True),
    Module("03", "layers", "Layers", F,
           "Module and Parameter, Linear, Sequential, Dropout, Flatten", ("01", "02"), True),
    Module("04", "losses", "Losses", F,
           "MSE, binary cross-entropy and a fused, stable cross-entropy", ("01", "02"), True),
    Module("05", "dataloader", "DataLoader", F,
           "Dataset, TensorDataset, shuffled mini-batches, random_split", ("01",), True),
    Module("06", "autograd", "Autograd", F,
           "reverse-mode automatic differentiation: backward rules and the backward engine",
           ("01", "02", "03", "04", "05"), True),
    Module("07", "optimizers", "Optimizers", F,
           "SGD with momentum, Adam, AdamW, learning-rate schedules, gradient clipping",
           ("06",), True),
    Module("08", "training", "Training", F,
           "the training loop: epochs, evaluation, checkpoints, early stopping",
           ("03", "04", "05", "07"), True),
    Module("09", "convolutions", "Convolutions", A,
           "Conv2d through im2col, pooling, BatchNorm2d: vectorised forward and backward",
           ("03", "06", "07"), True),  # 07: its checks train a small CNN with SGD
    Module("10", "tokenization", "Tokenization", A,
           "characters and subwords to integer ids (BPE)", ("01",), True),
    Module("11", "embeddings", "Embeddings", A,
           "token and positional embeddings", ("03", "06", "10"), True),
    Module("12", "attention", "Attention", A,
           "scaled dot-product and multi-head attention with causal masks", ("02", "11"), True),
    Module("13", "transformers", "Transformers", A,
           "LayerNorm, transformer blocks, a small GPT", ("08", "12"), True),
    Module("14", "profiling", "Profiling", O,
           "measuring time, memory and FLOPs of a model", ("08",), True),
    Module("15", "quantization", "Quantization", O,
           "int8 weights and activations, calibration", ("14",), True),
    Module("16", "compression", "Compression", O,
           "pruning and knowledge distillation", ("14",), True),
    Module("17", "memoization", "Memoization (KV cache)", O,
           "caching keys and values for fast autoregressive generation", ("13", "14"), True),
    Module("18", "acceleration", "Acceleration", O,
           "vectorisation, operator fusion, cache-friendly kernels", ("14",), True),
    Module("19", "benchmarking", "Benchmarking", O,
           "fair, reproducible benchmarks in the MLPerf style", ("15", "16", "17", "18"), True),
    Module("20", "capstone", "Capstone", C,
           "an optimised end-to-end system of your own design", ("13", "19"), True),
)

# ---------------------------------------------------------------------------------------------
# The milestones (victory conditions: see the milestone scripts' READMEs for the measured runs)
# ---------------------------------------------------------------------------------------------
MILESTONES: tuple[Milestone, ...] = (
    Milestone(
        "01", "perceptron", 1958, "The Perceptron", "Frank Rosenblatt",
        "Rosenblatt's perceptron was the first machine that learned from examples; his "
        "convergence theorem promised it would separate any linearly separable data.",
        "Train a perceptron with Rosenblatt's learning rule on linearly separable 2-D points "
        "and plot its decision boundary.",
        _ids(1, 3),
        (Part(1, "Rosenblatt's learning rule", (), "tito.milestones.m01_perceptron", "main", (
            Condition("train_acc", ">=", 1.0, "100% training accuracy (the convergence theorem)"),
            Condition("test_acc", ">=", 0.98, "at least 98% on held-out points"),
            Condition("loss_drop", ">=", 0.5, "mistakes per epoch fell by at least 50%"),
            Condition("weights_changed", "==", 1, "the weights changed during training"),
        ), limit_s=120, quick_limit_s=120),),
    ),
    Milestone(
        "02", "xor", 1969, "The XOR Crisis", "Marvin Minsky & Seymour Papert",
        "'Perceptrons' proved that a single-layer perceptron cannot compute XOR; funding "
        "dried up and the first AI winter began.",
        "Watch a single-layer perceptron fail on XOR, then solve it with a hidden layer "
        "trained by backpropagation.",
        _ids(1, 3),
        (
            Part(1, "The crisis: one layer cannot learn XOR", (), "tito.milestones.m02_xor",
                 "crisis", (
                     Condition("best_acc", "<=", 0.75, "a single layer never exceeds 75% on XOR"),
                     Condition("control_acc", ">=", 1.0, "the same perceptron learns AND and OR "
                               "(100%): its XOR failure is real"),
                     Condition("weights_changed", "==", 1, "the perceptron trained (its weights "
                               "changed)"),
                 ), limit_s=120, quick_limit_s=120),
            Part(2, "A hidden layer and backprop solve it", _ids(4, 7), "tito.milestones.m02_xor",
                 "solved", (
                     Condition("min_seed_acc", ">=", 1.0, "100% on XOR in every seed tried"),
                     Condition("grads_match", "==", 1, "backprop's gradients match finite "
                               "differences"),
                     *_trains(),
                 ), limit_s=180, quick_limit_s=180),
        ),
    ),
    Milestone(
        "03", "mlp", 1986, "The MLP Revival", "David Rumelhart, Geoffrey Hinton & Ronald Williams",
        "'Learning representations by back-propagating errors' showed that multi-layer "
        "networks can learn their own internal features - neural networks were back.",
        "Solve XOR with backprop, then train a multi-layer perceptron on real MNIST digits.",
        _ids(1, 8),
        (
            Part(1, "XOR by backpropagation", (), "tito.milestones.m03_mlp", "xor", (
                Condition("train_acc", ">=", 1.0, "100% on XOR"),
                Condition("grads_match", "==", 1, "backprop's gradients match finite differences"),
                *_trains(),
            ), limit_s=180, quick_limit_s=180),
            Part(2, "An MLP on MNIST", (), "tito.milestones.m03_mlp", "mnist", (
                Condition("test_acc", ">=", 0.98, "MNIST test accuracy (98.0%; --quick: 90%)",
                          quick_target=0.90),
                *_trains(),
            ), limit_s=1800, quick_limit_s=300),
        ),
    ),
    Milestone(
        "04", "cnn", 1998, "The CNN Revolution", "Yann LeCun, Léon Bottou, Yoshua Bengio & "
        "Patrick Haffner",
        "LeNet-5 read handwritten cheques for banks: convolutions share weights across the "
        "image, so a small network sees shapes wherever they are.",
        "Train LeNet-5 on MNIST to LeCun's 1998 accuracy, then a CNN on CIFAR-10 photos.",
        _ids(1, 9),
        (
            Part(1, "LeNet-5 on MNIST", (), "tito.milestones.m04_cnn", "lenet", (
                Condition("test_acc", ">=", 0.99, "MNIST test accuracy (99.0%; --quick: 90%)",
                          quick_target=0.90),
                *_trains(),
            ), limit_s=900, quick_limit_s=300),
            Part(2, "A CNN on CIFAR-10", (), "tito.milestones.m04_cnn", "cifar", (
                Condition("test_acc", ">=", 0.75, "CIFAR-10 test accuracy (75%; --quick: 30%)",
                          quick_target=0.30),
                *_trains(),
            ), limit_s=2700, quick_limit_s=300),
        ),
    ),
    Milestone(
        "05", "transformer", 2017, "The Transformer Era", "Ashish Vaswani et al.",
        "'Attention is all you need' replaced recurrence with attention; every large "
        "language model since is a transformer.",
        "Train a small character-level GPT on Tiny Shakespeare and let it write.",
        (*_ids(1, 8), *_ids(10, 13)),
        (
            Part(1, "Attention learns to route", (), "tito.milestones.m05_transformer", "routing", (
                Condition("copy_exact", ">=", 1.0, "copies 100% of 1,000 held-out digit strings "
                          "exactly (--quick: 50%)", quick_target=0.5),
                Condition("reverse_exact", ">=", 1.0, "reverses 100% of them exactly (--quick: "
                          "20%)", quick_target=0.2),
                *_probes(),
                *_trains(),
            ), limit_s=600, quick_limit_s=240),
            Part(2, "Tiny Shakespeare, character by character", (), "tito.milestones.m05_transformer",
                 "shakespeare", (
                     Condition("val_loss", "<=", 1.60, "validation loss (nats/char; --quick: 2.60)",
                               quick_target=2.60),
                     Condition("below_bigram", ">=", 0.5, "at least 0.5 below a counted character "
                               "bigram on the same split (--quick: 0.0)", quick_target=0.0),
                     Condition("minutes", "<=", 20, "the whole part within 20 minutes",
                               quick_target=10),
                     *_probes(attention=True),
                     Condition("loss_drop", ">=", 0.5, "loss falls by at least 50% from its first "
                               "value (--quick: 30%)", quick_target=0.3),
                     *_trains()[1:],
                 ), limit_s=1800, quick_limit_s=300),
            Part(3, "It writes Python", (), "tito.milestones.m05_transformer", "python_code", (
                Condition("parse_rate", ">=", 0.5, "of 100 sampled functions, parse with "
                          "ast.parse and are not copies of the corpus (--quick: 0%)",
                          quick_target=0.0),
                Condition("val_loss", "<=", 1.5, "held-out functions' loss (nats/char; --quick: "
                          "2.60)", quick_target=2.60),
                Condition("minutes", "<=", 20, "the whole part within 20 minutes",
                          quick_target=10),
                *_probes(attention=True),
                Condition("loss_drop", ">=", 0.5, "loss falls by at least 50% from its first "
                          "value (--quick: 30%)", quick_target=0.3),
                *_trains()[1:],
            ), limit_s=1800, quick_limit_s=300),
        ),
        options=("prompt", "temperature"),  # part 2's sample
    ),
    Milestone(
        "06", "mlperf", 2018, "MLPerf", "the MLPerf consortium",
        "MLPerf made ML systems comparable: fixed tasks, fixed quality targets, measured "
        "time - optimisation became a science.",
        "Profile, quantise, compress and accelerate your models, and benchmark them fairly.",
        (*_ids(1, 9), *_ids(14, 19)),  # 09: part 1 optimises the LeNet-5 of milestone 04
        (
            Part(1, "The vision model: LeNet-5 pruned, quantized, frozen", (), "tito.milestones.m06_mlperf",
                 "vision", (
                     Condition("quality_ratio", ">=", 0.99, "optimised test accuracy >= 99% of the FP32 "
                               "baseline's (MLPerf's rule; --quick: 97%)", quick_target=0.97),
                     Condition("size_ratio", ">=", 4.0, "stored model at least 4x smaller"),
                     Condition("p90_speedup", ">=", 1.5, "SingleStream p90 latency at least 1.5x lower"),
                     Condition("offline_speedup", ">=", 2.0, "Offline throughput at least 2x higher"),
                     Condition("int8_stored", "==", 1, "every quantized weight is stored as int8 codes"),
                     Condition("frozen_matches", "==", 1, "the frozen model computes what the model computes"),
                     Condition("harness_consistent", "==", 1, "the harness's numbers agree with a recount "
                               "(accuracy, percentiles, throughput, bytes)"),
                     Condition("weights_changed", "==", 1, "the pruned model was fine-tuned (its weights "
                               "changed)"),
                 ), limit_s=900, quick_limit_s=300),
            Part(2, "The language model: KV cache and INT8", _ids(10, 13), "tito.milestones.m06_mlperf",
                 "language", (
                     Condition("kv_speedup", ">=", 10.0, "KV-cache generation of 256 tokens at least 10x "
                               "faster (--quick: 3x)", quick_target=3.0),
                     Condition("tokens_identical", "==", 1, "identical greedy tokens with and without the "
                               "cache"),
                     Condition("int8_loss_gap", "<=", 0.05, "INT8 weights within 0.05 nats/char of the FP32 "
                               "validation loss (--quick: 0.10)", quick_target=0.10),
                     Condition("int8_stored", "==", 1, "every quantized weight is stored as int8 codes"),
                     Condition("loss_drop", ">=", 0.3, "the GPT trained: its loss fell by at least 30%"),
                     *_trains()[1:],
                 ), limit_s=900, quick_limit_s=300),
        ),
    ),
)

_BY_ID = {m.id: m for m in MODULES}


# ---------------------------------------------------------------------------------------------
# Lookup: ids as the learner types them
# ---------------------------------------------------------------------------------------------
def _lookup(text: str, items, kind: str, aliases):
    """Find an item by number ('3', '03'), key ('03_layers') or name/slug ('layers')."""
    t = str(text).strip().lower()
    for item in items:
        names = aliases(item)
        if t in names or (t.isdigit() and int(t) == int(item.id)):
            return item
    choices = sorted({n for item in items for n in aliases(item)})
    close = difflib.get_close_matches(t, choices, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else \
        f"see `tito {kind} list` for the valid ids"
    raise TitoError(f"unknown {kind} {text!r}", hint)


def get_module(text: str | int) -> Module:
    """The module for '3', '03', '03_layers' or 'layers'; TitoError (with suggestions) if unknown."""
    return _lookup(str(text), MODULES, "module", lambda m: (m.id, m.key, m.name))


def get_milestone(text: str | int) -> Milestone:
    """The milestone for '1', '01' or its slug ('perceptron'); TitoError if unknown."""
    return _lookup(str(text), MILESTONES, "milestone", lambda m: (m.id, m.slug, f"{m.id}_{m.slug}"))


def built_modules() -> list[Module]:
    return [m for m in MODULES if m.built]


def all_prereqs(module: Module) -> list[Module]:
    """Every module this one depends on, directly or not, in course order."""
    seen: set[str] = set()
    stack = list(module.prereqs)
    while stack:
        mid = stack.pop()
        if mid not in seen:
            seen.add(mid)
            stack.extend(_BY_ID[mid].prereqs)
    return [m for m in MODULES if m.id in seen]


def missing_prereqs(module: Module, completed: set[str]) -> list[Module]:
    """Prerequisites (transitively) not yet complete."""
    return [m for m in all_prereqs(module) if m.id not in completed]


# ---------------------------------------------------------------------------------------------
# Derived: what can run, what just unlocked, what to do next
# ---------------------------------------------------------------------------------------------
def part_runnable(milestone: Milestone, part: Part, completed: set[str]) -> bool:
    return all(mid in completed for mid in milestone.modules_for(part))


def runnable_parts(completed: set[str]) -> list[tuple[Milestone, Part]]:
    """Every (milestone, part) whose modules are all complete."""
    return [(ms, p) for ms in MILESTONES for p in ms.parts if part_runnable(ms, p, completed)]


def newly_runnable(before: set[str], after: set[str]) -> list[tuple[Milestone, Part]]:
    """The milestone parts that become runnable when the completed set grows from before to after."""
    was = {(ms.id, p.number) for ms, p in runnable_parts(before)}
    return [(ms, p) for ms, p in runnable_parts(after) if (ms.id, p.number) not in was]


def unlock_events(before: set[str], after: set[str]) -> list[tuple[Milestone, list[Part]]]:
    """`newly_runnable`, grouped: one event per milestone, with the parts it just unlocked."""
    events: dict[str, tuple[Milestone, list[Part]]] = {}
    for ms, part in newly_runnable(before, after):
        events.setdefault(ms.id, (ms, []))[1].append(part)
    return list(events.values())


def milestone_missing(milestone: Milestone, completed: set[str], part: Part | None = None) -> list[Module]:
    """Modules still missing for a milestone (its first part, or the given one)."""
    part = part or milestone.parts[0]
    return [_BY_ID[mid] for mid in milestone.modules_for(part) if mid not in completed]


def next_module(completed: set[str]) -> Module | None:
    """The first built, not yet complete module whose prerequisites are all complete."""
    for m in MODULES:
        if m.built and m.id not in completed and not missing_prereqs(m, completed):
            return m
    return None


def compact_ids(ids) -> str:
    """'01 02 03 05' -> '01-03, 05': module id lists as short ranges."""
    nums = sorted({int(i) for i in ids})
    runs: list[list[int]] = []
    for n in nums:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]:02d}" if len(r) == 1 else f"{r[0]:02d}-{r[-1]:02d}" for r in runs)


def consistency_problems() -> list[str]:
    """Registry facts that contradict each other (files on disk are checked by `tito dev verify`)."""
    problems = []
    ids = [m.id for m in MODULES]
    if ids != [f"{i:02d}" for i in range(1, len(MODULES) + 1)]:
        problems.append(f"module ids are not 01..{len(MODULES):02d} in order: {ids}")
    if len({m.name for m in MODULES}) != len(MODULES):
        problems.append("two modules share a name")
    for m in MODULES:
        if m.tier not in TIERS:
            problems.append(f"module {m}: unknown tier {m.tier!r}")
        for p in m.prereqs:
            if p not in _BY_ID:
                problems.append(f"module {m}: unknown prerequisite {p!r}")
            elif int(p) >= int(m.id):
                problems.append(f"module {m}: prerequisite {p} does not come before it")
            elif m.built and not _BY_ID[p].built:
                problems.append(f"module {m} is built but its prerequisite {p} is not")
    for ms in MILESTONES:
        if not ms.parts:
            problems.append(f"milestone {ms.id} has no parts")
        if len({p.number for p in ms.parts}) != len(ms.parts):
            problems.append(f"milestone {ms.id}: two parts share a number")
        for p in ms.parts:
            for mid in (*ms.requires, *p.needs):
                if mid not in _BY_ID:
                    problems.append(f"milestone {ms.id} part {p.number}: unknown module {mid!r}")
            if not p.script:
                problems.append(f"milestone {ms.id} part {p.number}: no script")
    if len({ms.slug for ms in MILESTONES}) != len(MILESTONES):
        problems.append("two milestones share a slug")
    return problems
