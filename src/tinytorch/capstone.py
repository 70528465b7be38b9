# %% [markdown]
# # Module 20 - Capstone
#
# Nineteen modules gave you a framework, and the last six a toolbox for making its models small
# and fast, and for measuring them honestly. The capstone asks one question: **what is the best
# system you can build for a real task under a fixed budget?** The task is MNIST digits; the
# budget is 10 minutes of wall time for the whole training process and 1 MB for the stored model.
# Within it the design is yours - a wider MLP stored in int8, a pruned LeNet, a distilled student,
# a fused forward - and `tito capstone submit` re-runs your code in a clean process with a fixed
# seed, measures everything itself and writes the submission file. No number you claim is
# accepted without that re-run.
#
# This module builds the pieces of that contract, so that the run tito repeats is one you have
# already made reproducible, budgeted and measured yourself. After it: `tito capstone start`
# writes your project, `tito capstone submit` checks it (see docs/CAPSTONE.md).
#
# ## What you build
#
# | step | you write | checked by |
# |---|---|---|
# | 1 | `seed_everything(seed)`: every random number of a run follows from one seed | `check("20", "seed_everything")` |
# | 2 | `BudgetClock`: `elapsed()`, `remaining()`, `expired()` on a monotonic clock | `check("20", "BudgetClock")` |
# | 3 | `train_within(step, clock, reserve_s, max_steps)`: steps that stop before the deadline | `check("20", "train_within")` |
# | 4 | `stored_bytes(folder)`: the bytes a saved system takes on disk | `check("20", "stored_bytes")` |
# | 5 | `budget_violations(wall_s, size_bytes, budget)`: each breach, and by how much | `check("20", "budget_violations")` |
# | 6 | `unreproduced(claimed, measured, tolerance)`: each claim a re-run does not confirm | `check("20", "unreproduced")` |
# | 7 | `compare_systems(baseline, optimised)`: module 19's results side by side | `check("20", "compare_systems")` |
#
# Given: the `Budget` and `TrainLog` dataclasses. The timing checks drive your code with a fake
# clock, so every expected number below is worked out by hand.

# %%
"""Module 20: the capstone's contract - reproducible, budgeted, measured systems.

    Budget(wall_s, max_bytes)                      the task's limits
    seed_everything(seed) -> np.random.Generator   tinytorch's generator, NumPy's global one, and a
                                                   fresh Generator, all from `seed`
    BudgetClock(seconds, timer=time.monotonic)     elapsed() / remaining() (never < 0) / expired()
    train_within(step, clock, reserve_s=0.0, max_steps=None) -> TrainLog
        calls step() (it returns the loss) while the next step is predicted to end before the
        budget minus the reserve; the prediction is the longest step so far
    stored_bytes(folder) -> int                    every file under folder; a link is refused
    budget_violations(wall_s, size_bytes, budget) -> list[str]     empty: within the budget
    unreproduced(claimed, measured, tolerance) -> list[str]        empty: every claim reproduced
        claimed, measured: {system: {metric: value}}; tolerance: {metric: largest |difference|}
    compare_systems(baseline, optimised, ratio=0.99) -> dict       two module 19 BenchmarkResults
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tinytorch.benchmarking import BenchmarkResult, meets_quality
from tinytorch.tensor import manual_seed

# %% [markdown]
# ## A budget, and why it changes the design
#
# Every result you have produced so far had a hidden budget: "until it looks good". Real systems
# have explicit ones. MLPerf Training measures *time to a quality target* on fixed hardware; a
# phone app has a model-size limit set by its download; a search engine has a latency limit per
# query. A fixed budget turns "the best model" into an engineering question with a real answer,
# because each design choice now costs something you can count:
#
# - **Wall time** (here 600 s for the whole training process: start-up, loading the data,
#   training, saving). A larger model learns more per step but takes fewer steps in the time; a
#   larger batch uses the BLAS better but updates less often; an epoch spent on evaluation is an
#   epoch not spent training.
# - **Stored size** (here 1,000,000 bytes for the files of your optimised system). The FP32 MLP
#   784-256-128-10 of milestone 03 has 235,146 parameters: 940,584 bytes as float32 - it just
#   fits. A 784-512-256-10 MLP (535,818 parameters, 2.1 MB in float32) fits only in int8
#   (module 15) or pruned and stored sparsely (module 16). The budget counts bytes on disk, not
#   parameters: a format's overhead and its compression count too.
#
# `Budget(wall_s, max_bytes)` holds the two limits. tito's task table is the authority for the
# official numbers (`tito capstone tasks`); the ones here are for trying things out.

# %%
@dataclass(frozen=True)
class Budget:
    """A task's limits: wall seconds for the training process, bytes for the stored system."""

    wall_s: float
    max_bytes: int
    name: str = "budget"


@dataclass
class TrainLog:
    """What train_within did: steps run, the clock's elapsed seconds when it stopped, each step's
    seconds and loss, and why it stopped ("budget" or "max_steps")."""

    steps: int
    seconds: float
    step_seconds: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    stopped: str = "budget"


# %% [markdown]
# ## Step 1: one seed for the whole run
#
# `tito capstone submit` re-runs your training from a clean process with a fixed seed and compares
# what it measures with what you claimed. That works only if the seed decides *every* random
# number the run draws. A TinyTorch run has three sources:
#
# 1. **tinytorch's own generator** - behind `randn`, `rand`, every `Linear`'s initial weights,
#    `Dropout`'s masks and the `DataLoader`'s shuffling. `manual_seed(seed)` (module 01) reseeds it.
# 2. **NumPy's global generator** - `np.random.rand`, `np.random.permutation`, `np.random.shuffle`:
#    what any code of yours (or a library's) uses when it does not take a generator.
#    `np.random.seed(seed)` reseeds it.
# 3. **generators you make** - `np.random.default_rng(seed)`, the modern style (module 19's
#    calibration set). Pass one to the code that needs it instead of reaching for a global.
#
# `seed_everything(seed)` reseeds the first two and returns a fresh `np.random.default_rng(seed)`
# for the third. Worked example: `rng = seed_everything(0)` then `rng.integers(0, 10, 3)` gives
# `[8, 6, 5]` on every machine; `seed_everything(0)` again, and `Linear(4, 2).weight` is the same
# matrix it was the first time.
#
# What a seed does **not** fix: the order of floating-point additions. A matrix multiply summed
# by 4 BLAS threads adds in a different order than one thread, and float32 addition is not
# associative, so the logits can differ in the 7th digit - enough to flip the prediction on a
# handful of borderline test images. tito runs your code with one BLAS thread; a claim made in a
# notebook with four threads may differ by a few images. That is what the tolerance of step 6 is
# for. The cost of this step is nothing: reseeding is a few microseconds.
#
# **What to write.** `seed_everything(seed)`: `manual_seed(seed)`, `np.random.seed(seed)`, and
# return `np.random.default_rng(seed)`.

# %% nbgrader={"grade": false, "grade_id": "seed-everything", "locked": false, "schema_version": 3, "solution": true, "task": false}
def seed_everything(seed: int) -> np.random.Generator:
    """Reseed tinytorch's generator and NumPy's global one with `seed`; a new Generator from it."""
    # HINT: manual_seed(seed); np.random.seed(seed); return np.random.default_rng(seed)
    ### BEGIN SOLUTION
    manual_seed(seed)
    np.random.seed(seed)
    return np.random.default_rng(seed)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    from tinytorch.layers import Linear

    rng = seed_everything(0)
    first = (rng.integers(0, 10, 3).tolist(), Linear(4, 2).weight.data.round(3).tolist())
    rng = seed_everything(0)
    again = (rng.integers(0, 10, 3).tolist(), Linear(4, 2).weight.data.round(3).tolist())
    print("draws:", first[0], "initial weights:", first[1][0])
    print("the same run again gives the same numbers:", first == again)

# %% nbgrader={"grade": true, "grade_id": "check-seed-everything", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("20", "seed_everything")

# %% [markdown]
# ## Step 2: a clock for the budget
#
# A budget needs a clock the training loop can ask "how much time is left?". Two details matter.
#
# **Which clock.** `time.time()` is the wall-clock *date*: the operating system corrects it (NTP)
# and it can jump forwards or even backwards while your run is going. `time.monotonic()` only ever
# moves forward at the rate of real time - the right clock for measuring a duration (module 14
# used `perf_counter`, a monotonic clock with a finer tick, for microsecond timings). The clock
# takes the function to read as `timer`, so a check can hand it a fake one.
#
# **What "left" means.** `elapsed()` is the seconds since the clock was made (`timer()` now minus
# `timer()` at the start, which `__init__` reads). `remaining()` is `seconds - elapsed()`, but
# never negative: a run that is 3 s over its budget has 0 s left, not -3. `expired()` is true once
# `elapsed() >= seconds`. Worked example: a 10 s clock made at `timer() = 100.0`; at 104.5,
# `elapsed() = 4.5`, `remaining() = 5.5`, `expired()` false; at 112, `elapsed() = 12`,
# `remaining() = 0.0`, `expired()` true.
#
# **What to write.** The three methods of `BudgetClock` (`__init__` is given).

# %% nbgrader={"grade": false, "grade_id": "budget-clock", "locked": false, "schema_version": 3, "solution": true, "task": false}
class BudgetClock:
    """Seconds of budget on a monotonic clock, started when the clock is made."""

    def __init__(self, seconds: float, timer: Callable[[], float] = time.monotonic):
        if not seconds >= 0:
            raise ValueError(f"BudgetClock: seconds must be >= 0, got {seconds}")
        self.seconds, self.timer = float(seconds), timer
        self.start = timer()

    def elapsed(self) -> float:
        """Seconds since the clock was made."""
        # HINT: self.timer() - self.start
        ### BEGIN SOLUTION
        return self.timer() - self.start
        ### END SOLUTION

    def remaining(self) -> float:
        """Seconds left of the budget, never below 0."""
        # HINT: max(0.0, self.seconds - self.elapsed())
        ### BEGIN SOLUTION
        return max(0.0, self.seconds - self.elapsed())
        ### END SOLUTION

    def expired(self) -> bool:
        """True once the whole budget is used."""
        # HINT: self.elapsed() >= self.seconds
        ### BEGIN SOLUTION
        return self.elapsed() >= self.seconds
        ### END SOLUTION


# %%
if __name__ == "__main__":
    class FakeTimer:
        """A clock that moves only when told to."""

        def __init__(self, now=100.0):
            self.now = now

        def __call__(self):
            return self.now

    fake = FakeTimer()
    clock = BudgetClock(10, timer=fake)
    for now in (104.5, 112.0):
        fake.now = now
        print(f"at {now}: elapsed {clock.elapsed():.1f} s, remaining {clock.remaining():.1f} s, "
              f"expired {clock.expired()}")

# %% nbgrader={"grade": true, "grade_id": "check-budget-clock", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("20", "BudgetClock")

# %% [markdown]
# ## Step 3: training that stops *before* the deadline
#
# The obvious loop, `while not clock.expired(): step()`, overshoots: it checks before a step
# whether time is left, and a step that starts 0.1 s before the deadline and takes 2 s ends 1.9 s
# after it. A submission over its budget is refused, so the loop must **predict** whether the next
# step fits. The prediction here is the simplest safe one: the *longest* step seen so far (a mean
# would be beaten by the first slow step - a garbage collection, another process on the core).
# And the loop must leave a **reserve** for what comes after training - saving the model,
# quantising it, writing files - which the budget counts too.
#
# The rule, before each step:
#
# - the first step runs if `clock.remaining() > reserve_s` (there is no estimate yet);
# - every later step runs if `clock.remaining() - reserve_s >= longest`, the longest step so far;
# - and never more than `max_steps` steps (None: no limit).
#
# Each step is timed with the clock (`clock.elapsed()` before and after), and `step()` returns the
# loss, which you keep. Return `TrainLog(steps, seconds, step_seconds, losses, stopped)` with
# `seconds = clock.elapsed()` at the end and `stopped = "max_steps"` if the step limit ended the
# loop, else `"budget"`.
#
# Worked example (the check's fixture): a 10 s budget, reserve 2 s, steps of 1 s each. Before step
# 1: 10 s left > 2 - run. After 7 steps, 3 s left: 3 - 2 = 1 >= 1 - run the 8th. After 8, 2 s left:
# 0 < 1 - stop. Eight steps, ending at 8.0 s, the reserve untouched. With steps of 1, 1, 3, 1, 1,
# ... s the longest becomes 3 after the third step, and the loop stops with 3 s of slack instead of
# 1 - cautious, but never late unless a step is slower than every step before it.
#
# **The catch: a time budget breaks reproducibility.** If the clock decides when training ends, a
# faster machine (or a quieter hour on a shared one) runs more steps and gets a different model -
# and tito's re-run will not reproduce your claim. So give the loop a `max_steps` that fits the
# budget with room to spare, and let the clock be only the safety net: a run that stops with
# `stopped == "max_steps"` does the same work on every machine that is fast enough. `TrainLog`
# tells you which one happened.
#
# **What to write.** `train_within(step, clock, reserve_s=0.0, max_steps=None)`.

# %% nbgrader={"grade": false, "grade_id": "train-within", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train_within(step: Callable[[], float], clock: BudgetClock, reserve_s: float = 0.0,
                 max_steps: int | None = None) -> TrainLog:
    """Call step() while the next step is predicted to end before the budget minus the reserve
    (prediction: the longest step so far); at most max_steps steps."""
    if reserve_s < 0 or (max_steps is not None and max_steps < 0):
        raise ValueError(f"train_within: need reserve_s >= 0 and max_steps >= 0, got {reserve_s}, {max_steps}")
    # HINT: loop: if max_steps is not None and len(times) >= max_steps: stopped = "max_steps"; break
    # HINT: left = clock.remaining() - reserve_s; stop if (no step yet and left <= 0) or left < max(times)
    # HINT: t0 = clock.elapsed(); loss = step(); times.append(clock.elapsed() - t0); losses.append(float(loss))
    ### BEGIN SOLUTION
    times: list[float] = []
    losses: list[float] = []
    stopped = "budget"
    while True:
        if max_steps is not None and len(times) >= max_steps:
            stopped = "max_steps"
            break
        left = clock.remaining() - reserve_s
        if (not times and left <= 0) or (times and left < max(times)):
            break
        t0 = clock.elapsed()
        loss = step()
        times.append(clock.elapsed() - t0)
        losses.append(float(loss))
    return TrainLog(len(times), clock.elapsed(), times, losses, stopped)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    fake = FakeTimer(0.0)

    def one_second_step():
        fake.now += 1.0
        return 1.0 / fake.now  # a "loss" that falls

    log = train_within(one_second_step, BudgetClock(10, timer=fake), reserve_s=2.0)
    print(f"{log.steps} steps, stopped at {log.seconds:.1f} s by the {log.stopped}")  # 8 steps, 8.0 s
    fake.now = 0.0
    log = train_within(one_second_step, BudgetClock(10, timer=fake), reserve_s=2.0, max_steps=5)
    print(f"{log.steps} steps, stopped at {log.seconds:.1f} s by {log.stopped}")  # 5 steps: max_steps

# %% nbgrader={"grade": true, "grade_id": "check-train-within", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("20", "train_within")

# %% [markdown]
# ## Step 4: what a saved system weighs
#
# The size budget is about the system as it is *stored*: the files your `load` reads back to
# predict. Module 15's `model_size_bytes` counted the arrays of a state_dict; the bytes on disk
# differ from that in both directions:
#
# - **More**: every file format has overhead. An `.npz` is a zip archive of `.npy` files, each with
#   a header (about 128 bytes) and a zip entry (about 100 bytes) - noise for a 900 KB matrix, but
#   a model with 40 small bias vectors pays 9 KB of it. A JSON side file with the architecture
#   counts too.
# - **Less**: `np.savez_compressed` deflates the data. Float32 weights barely compress (their
#   mantissas look random), but int8 codes and pruned weights - mostly zeros - compress well. A
#   90%-sparse matrix stored densely and compressed can be smaller than the same matrix stored as
#   (index, value) pairs.
#
# So the budget is measured the only way that cannot be argued with: the sizes of the files in
# the system's folder, every file in every sub-folder, as the operating system reports them
# (`Path.stat().st_size`). One thing is refused: a **symbolic link**. A link weighs a few bytes
# and can point at a 100 MB file elsewhere; counting the link would let a system escape its
# budget, and following it would count a file the system does not own. `os.walk(folder)` visits
# every folder (it does not descend into linked folders, but lists them); check every entry with
# `os.path.islink`.
#
# Worked example: a folder with `model.npz` (1,200 bytes) and `extra/meta.json` (34 bytes) weighs
# 1,234 bytes. An empty folder weighs 0; a path that is not a folder raises `FileNotFoundError`.
#
# **What to write.** `stored_bytes(folder)`: the sum of the sizes of every file under `folder`;
# `ValueError` naming a link, if there is one.

# %% nbgrader={"grade": false, "grade_id": "stored-bytes", "locked": false, "schema_version": 3, "solution": true, "task": false}
def stored_bytes(folder) -> int:
    """The bytes of every file under `folder` (recursively); a symbolic link raises ValueError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"stored_bytes: {folder} is not a folder")
    # HINT: for base, dirs, files in os.walk(folder): for each name in dirs + files, p = Path(base) / name;
    # HINT: os.path.islink(p) -> raise ValueError(f"stored_bytes: {p} is a link ..."); files: total += p.stat().st_size
    ### BEGIN SOLUTION
    total = 0
    for base, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            p = Path(base) / name
            if os.path.islink(p):
                raise ValueError(f"stored_bytes: {p} is a link; a system's files must be its own")
        total += sum((Path(base) / name).stat().st_size for name in files)
    return int(total)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        w = np.random.default_rng(0).standard_normal((256, 784)).astype(np.float32)
        np.savez(Path(tmp) / "fp32.npz", w=w)
        q = np.clip(np.round(w / np.abs(w).max() * 127), -127, 127).astype(np.int8)
        (Path(tmp) / "int8").mkdir()
        np.savez_compressed(Path(tmp) / "int8" / "w.npz", q=q)
        print(f"the arrays: {w.nbytes:,} bytes as float32, {q.nbytes:,} as int8")
        print(f"on disk: fp32.npz {(Path(tmp) / 'fp32.npz').stat().st_size:,} bytes, "
              f"int8/ {stored_bytes(Path(tmp) / 'int8'):,} bytes (compressed), everything {stored_bytes(tmp):,}")

# %% nbgrader={"grade": true, "grade_id": "check-stored-bytes", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("20", "stored_bytes")

# %% [markdown]
# ## Step 5: the budget, accounted
#
# A run is within its budget when its wall time is at most `budget.wall_s` **and** its optimised
# system's stored size is at most `budget.max_bytes` (equal is within). A refusal that only says
# "over budget" sends the learner guessing; a useful one names each limit that was broken and by
# how much, because the amount decides the fix: 2 s over means trim the epochs a little, 2 MB over
# means a different model.
#
# Return one message per breach, in this order and this wording (the check reads the numbers):
#
# - `f"wall time {wall_s:.1f} s is over the budget of {budget.wall_s:g} s by {wall_s - budget.wall_s:.1f} s"`
# - `f"stored size {size_bytes:,} bytes is over the budget of {budget.max_bytes:,} by {size_bytes - budget.max_bytes:,}"`
#
# and an empty list when both hold. Worked example: `Budget(600, 1_000_000)`, a run of 612.34 s
# with 1,204,000 bytes gives `["wall time 612.3 s is over the budget of 600 s by 12.3 s", "stored
# size 1,204,000 bytes is over the budget of 1,000,000 by 204,000"]`; 600.0 s and 1,000,000 bytes
# give `[]`.
#
# **What to write.** `budget_violations(wall_s, size_bytes, budget)`.

# %% nbgrader={"grade": false, "grade_id": "budget-violations", "locked": false, "schema_version": 3, "solution": true, "task": false}
def budget_violations(wall_s: float, size_bytes: int, budget: Budget) -> list[str]:
    """One message per limit the run broke (wall time, then stored size); [] within the budget."""
    # HINT: if wall_s > budget.wall_s: append the wall-time message; if size_bytes > budget.max_bytes: the size one
    ### BEGIN SOLUTION
    out = []
    if wall_s > budget.wall_s:
        out.append(f"wall time {wall_s:.1f} s is over the budget of {budget.wall_s:g} s by "
                   f"{wall_s - budget.wall_s:.1f} s")
    if size_bytes > budget.max_bytes:
        out.append(f"stored size {size_bytes:,} bytes is over the budget of {budget.max_bytes:,} by "
                   f"{size_bytes - budget.max_bytes:,}")
    return out
    ### END SOLUTION


# %%
if __name__ == "__main__":
    mnist = Budget(600, 1_000_000, "MNIST")
    print(budget_violations(612.34, 1_204_000, mnist))
    print(budget_violations(600.0, 1_000_000, mnist), "(exactly at the limits: within)")

# %% nbgrader={"grade": true, "grade_id": "check-budget-violations", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("20", "budget_violations")

# %% [markdown]
# ## Step 6: which claims does the re-run confirm?
#
# Science accepts a number when someone else can reproduce it; `tito capstone submit` is that
# someone else. You claim, for each of your systems, the metrics your own run measured - here
# `{"baseline": {"accuracy": 0.9791, "size_bytes": 941250}, "optimised": {...}}` - and the re-run
# measures the same metrics afresh. A claim is **reproduced** when the two differ by at most the
# metric's tolerance.
#
# How large a tolerance? It should cover what legitimately differs between two honest runs and
# nothing more. With a fixed seed and a fixed number of steps, training does the same arithmetic,
# up to the summation order of multi-threaded BLAS (step 1): a few of the 10,000 test images can
# flip. Each image is 0.0001 of accuracy, so tito allows 0.005 (50 images) - far less than any
# real change of design, far more than thread-order noise. A stored size is a file size: with the
# same weights it is the same to the byte, so a small allowance (1 KB, for a format that stores a
# time stamp) is plenty. Latency is *not* claimed: on a shared machine it moves by tens of percent
# from one minute to the next (module 19), so tito measures it and reports it, and judges nothing
# by it.
#
# Check every metric of `tolerance` for every system in `measured` or `claimed`, in that order
# (`measured`'s systems first, then any claimed system the run did not produce), and return one
# message per problem:
#
# - a claimed system the run did not produce: `f"{system}: claimed, but the run produced no such system"`
# - no claim: `f"{system} {metric}: no claim"`;  not measured: `f"{system} {metric}: not measured"`
# - too far apart: `f"{system} {metric}: claimed {c:g}, measured {m:g} (off by {abs(c - m):g}; tolerance {tol:g})"`
#
# Worked example: claimed optimised accuracy 0.9812, measured 0.9734, tolerance 0.005: `"optimised
# accuracy: claimed 0.9812, measured 0.9734 (off by 0.0078; tolerance 0.005)"`. (`:g` prints up to
# six significant digits, so `abs(c - m)` of two four-digit accuracies prints as 0.0078.)
#
# **What to write.** `unreproduced(claimed, measured, tolerance)`: `[]` when every claim holds.

# %% nbgrader={"grade": false, "grade_id": "unreproduced", "locked": false, "schema_version": 3, "solution": true, "task": false}
def unreproduced(claimed: dict, measured: dict, tolerance: dict) -> list[str]:
    """Every claim the re-run does not confirm: {system: {metric: value}} claimed vs measured,
    |claimed - measured| <= tolerance[metric] for each metric of `tolerance`."""
    # HINT: for system in measured: for metric, tol in tolerance.items(): c = claimed.get(system, {}).get(metric);
    # HINT: m = measured[system].get(metric); no claim / not measured / abs(c - m) > tol messages;
    # HINT: then every system of claimed that is not in measured
    ### BEGIN SOLUTION
    out = []
    for system, values in measured.items():
        for metric, tol in tolerance.items():
            c, m = (claimed.get(system) or {}).get(metric), values.get(metric)
            if c is None:
                out.append(f"{system} {metric}: no claim")
            elif m is None:
                out.append(f"{system} {metric}: not measured")
            elif abs(c - m) > tol:
                out.append(f"{system} {metric}: claimed {c:g}, measured {m:g} (off by {abs(c - m):g}; "
                           f"tolerance {tol:g})")
    out += [f"{s}: claimed, but the run produced no such system" for s in claimed if s not in measured]
    return out
    ### END SOLUTION


# %%
if __name__ == "__main__":
    tol = {"accuracy": 0.005, "size_bytes": 1024}
    mine = {"baseline": {"accuracy": 0.9791, "size_bytes": 941250},
            "optimised": {"accuracy": 0.9812, "size_bytes": 240518}}
    rerun = {"baseline": {"accuracy": 0.9788, "size_bytes": 941250},
             "optimised": {"accuracy": 0.9734, "size_bytes": 240518}}
    print(unreproduced(mine, rerun, tol))  # the baseline is within 0.005, the optimised claim is not

# %% nbgrader={"grade": true, "grade_id": "check-unreproduced", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("20", "unreproduced")

# %% [markdown]
# ## Step 7: baseline against optimised
#
# A capstone result is always a comparison: what did the optimisation buy, and what did it cost?
# Benchmark both systems with module 19's `run_benchmark` - same test split, same queries, same
# batch - and put the results side by side:
#
# | field | formula | reads as |
# |---|---|---|
# | `accuracy_delta` | $acc_{opt} - acc_{base}$ | what the optimisation cost (or gained) in quality |
# | `speedup_p50` | $p50_{base} / p50_{opt}$ (SingleStream) | > 1: the optimised system answers one query faster |
# | `throughput_ratio` | $thr_{opt} / thr_{base}$ (Offline) | > 1: more samples per second in bulk |
# | `size_ratio` | $bytes_{base} / bytes_{opt}$ | > 1: smaller on disk; None when either size is unknown |
# | `meets_quality` | module 19's `meets_quality(acc_opt, acc_base, ratio)` | MLPerf's rule: at least 99% of the baseline's accuracy |
#
# Both ratios are written so that **larger is better**, which makes a table of them easy to read;
# a speedup below 1 is a slowdown and should be reported as one (an int8 model on the float route
# can be slower at batch 1 - module 19 measured why). Worked example: baseline accuracy 0.98, p50
# 0.20 ms, 50,000 samples/s, 940,000 bytes; optimised 0.975, 0.16 ms, 40,000 samples/s, 235,000
# bytes: delta -0.005, speedup 1.25, throughput ratio 0.8, size ratio 4.0, and 0.975 >= 0.99 x 0.98
# = 0.9702 meets the quality rule.
#
# **What to write.** `compare_systems(baseline, optimised, ratio=0.99)`: the dict of the table.

# %% nbgrader={"grade": false, "grade_id": "compare-systems", "locked": false, "schema_version": 3, "solution": true, "task": false}
def compare_systems(baseline: BenchmarkResult, optimised: BenchmarkResult, ratio: float = 0.99) -> dict:
    """accuracy_delta, speedup_p50, throughput_ratio, size_ratio (None if a size is unknown) and
    meets_quality of the optimised system against the baseline."""
    # HINT: baseline.single_stream.p50 / optimised.single_stream.p50; optimised.offline.throughput / baseline's;
    # HINT: baseline.size_bytes / optimised.size_bytes unless either is None; meets_quality(opt acc, base acc, ratio)
    ### BEGIN SOLUTION
    sizes = (baseline.size_bytes, optimised.size_bytes)
    return {
        "accuracy_delta": optimised.accuracy - baseline.accuracy,
        "speedup_p50": baseline.single_stream.p50 / optimised.single_stream.p50,
        "throughput_ratio": optimised.offline.throughput / baseline.offline.throughput,
        "size_ratio": None if None in sizes else sizes[0] / sizes[1],
        "meets_quality": meets_quality(optimised.accuracy, baseline.accuracy, ratio),
    }
    ### END SOLUTION


# %%
if __name__ == "__main__":
    from tinytorch.benchmarking import OfflineResult
    from tinytorch.profiling import LatencyStats

    def made_up(acc, p50, thr, size):
        ss = LatencyStats(np.array([p50]), p50, p50, p50, p50, p50)
        return BenchmarkResult("x", acc, acc, 0.99, True, ss, OfflineResult(1000, 256, 1000 / thr, thr), 1000, size)

    print(compare_systems(made_up(0.98, 0.20, 50_000, 940_000), made_up(0.975, 0.16, 40_000, 235_000)))

# %% nbgrader={"grade": true, "grade_id": "check-compare-systems", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("20", "compare_systems")

# %% [markdown]
# ## Try it: a capstone in miniature
#
# The cell below runs the whole contract on ten Gaussian clusters (module 19's synthetic data:
# each label is the cluster the point came from), with a budget of 4 s and 20,000 bytes:
#
# 1. `train(seed)`: `seed_everything`, an MLP 32-128-64-10, Adam, and `train_within` with a 0.5 s
#    reserve and `max_steps=150` - a fixed amount of work, the clock only as a safety net;
# 2. two systems, each in its own folder: the **baseline** (the float32 weights, `np.savez`) and
#    the **optimised** one (the same weights stored as int8 codes with one scale per matrix,
#    module 15's per-tensor quantisation, `np.savez_compressed`; it dequantises on load);
# 3. each weighed with `stored_bytes` and benchmarked with module 19's `run_benchmark`;
#    `compare_systems` and `budget_violations` on the results;
# 4. the same `train(seed)` again, in the same process, and `unreproduced` on the two runs'
#    metrics - the check `tito capstone submit` makes, across processes.
#
# What to expect (measured here, a shared 2-core machine): the 150 steps in about 0.1-0.3 s
# (`stopped` = "max_steps": the clock never had to step in); a baseline of 54,018 bytes - 13,002
# float32 parameters plus about 330 bytes of npz overhead per array, over this toy budget - and an
# optimised system of about 16,300 bytes (the int8 codes are a quarter of the floats; the scales,
# zero points and zip entries of 18 arrays are the rest), a size ratio of 3.3; test accuracies
# of 0.9170 and 0.9172 on the 20,000 test points (int8 rounding moved a few borderline points,
# here for the better); latency and throughput alike too, since the optimised system dequantises
# on load and then runs the same float forward - a difference of tens of percent between them
# (seen here from one run to the next) is the machine, not the code; and a re-run that
# reproduces every claim exactly: `[]`.

# %%
if __name__ == "__main__":
    import tempfile

    from tinytorch.activations import ReLU
    from tinytorch.benchmarking import Splits, predictor, run_benchmark
    from tinytorch.layers import Linear, Sequential
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam
    from tinytorch.quantization import compute_qparams, dequantize, quantize
    from tinytorch.tensor import Tensor

    centres = np.random.default_rng(0).standard_normal((10, 32)).astype(np.float32) * 0.6

    def draw(n, seed):
        g = np.random.default_rng(seed)
        y = g.integers(0, 10, n)
        return centres[y] + g.standard_normal((n, 32)).astype(np.float32), y

    blobs = Splits(*draw(4000, 1), *draw(20000, 2), name="10 Gaussian clusters")
    toy_budget = Budget(4.0, 20_000, "toy")

    def build():
        return Sequential(Linear(32, 128), ReLU(), Linear(128, 64), ReLU(), Linear(64, 10))

    def train(seed):
        rng = seed_everything(seed)
        model = build()
        opt, loss_fn = Adam(model.parameters(), lr=3e-3), CrossEntropyLoss()

        def step():
            idx = rng.integers(0, len(blobs.x_train), 128)
            loss = loss_fn(model(Tensor(blobs.x_train[idx])), Tensor(blobs.y_train[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()

        log = train_within(step, BudgetClock(toy_budget.wall_s), reserve_s=0.5, max_steps=150)
        return model, log

    def save_systems(model, folder):
        state = model.state_dict()
        (folder / "baseline").mkdir(parents=True)
        np.savez(folder / "baseline" / "weights.npz", **state)
        codes = {}
        for k, v in state.items():
            qp = compute_qparams(v)  # one scale and zero point per array
            codes[k], codes[k + ".scale"], codes[k + ".zero"] = quantize(v, qp), qp.scale, qp.zero_point
        (folder / "optimised").mkdir()
        np.savez_compressed(folder / "optimised" / "weights.npz", **codes)

    def load(system_folder):
        model = build()
        with np.load(system_folder / "weights.npz") as z:
            if "0.weight.scale" in z.files:  # int8 codes: dequantise
                from tinytorch.quantization import QuantParams

                state = {k: dequantize(z[k], QuantParams(z[k + ".scale"], z[k + ".zero"]))
                         for k in z.files if not k.endswith((".scale", ".zero"))}
            else:
                state = {k: z[k] for k in z.files}
        model.load_state_dict(state)
        return predictor(model)

    def measure(folder):
        started = time.monotonic()
        model, log = train(seed=20)
        save_systems(model, folder)
        wall = time.monotonic() - started
        results = {}
        for name in ("baseline", "optimised"):
            predict = load(folder / name)
            for _ in range(2):  # the first pass pays one-time costs (module 14): keep the second
                results[name] = run_benchmark(name, predict, blobs, queries=200, warmup=20, batch=500,
                                              size_bytes=stored_bytes(folder / name),
                                              reference=results.get("baseline"))
        return log, wall, results

    with tempfile.TemporaryDirectory() as tmp:
        log, wall, first = measure(Path(tmp) / "run1")
        print(f"trained {log.steps} steps in {log.seconds:.2f} s (stopped by {log.stopped}); "
              f"the whole run {wall:.2f} s")
        for r in first.values():
            print(f"  {r.name:9s} accuracy {r.accuracy:.4f}  {r.size_bytes:,} bytes  "
                  f"p50 {r.single_stream.p50 * 1e3:.0f} us  {r.offline.throughput:,.0f} samples/s")
        print("compare:", {k: (round(v, 4) if isinstance(v, float) else v)
                           for k, v in compare_systems(first["baseline"], first["optimised"]).items()})
        print("budget (optimised):", budget_violations(wall, first["optimised"].size_bytes, toy_budget) or "within")
        print("budget (baseline): ", budget_violations(wall, first["baseline"].size_bytes, toy_budget))
        claims = {n: {"accuracy": r.accuracy, "size_bytes": r.size_bytes} for n, r in first.items()}
        _, _, second = measure(Path(tmp) / "run2")
        again = {n: {"accuracy": r.accuracy, "size_bytes": r.size_bytes} for n, r in second.items()}
        print("re-run, claims not reproduced:", unreproduced(claims, again, {"accuracy": 0.005, "size_bytes": 1024}))

# %% [markdown]
# ## Wrap-up, and your capstone
#
# You built the contract a reproducible, budgeted result rests on: one seed for every random
# number; a monotonic budget clock; a training loop that predicts whether its next step fits and
# keeps a reserve, with a fixed step count so that the clock is a guard and not a source of
# variation; the stored size of a system as its files weigh on disk, links refused; the budget
# accounted breach by breach; claims compared with a re-run within tolerances that cover thread
# order and nothing else; and two systems compared with module 19's harness.
#
# The lessons to keep:
#
# - **A budget makes trade-offs countable.** Width against steps, float32 against int8, dense
#   against pruned: each costs seconds or bytes, and the budget says which you can afford.
# - **Reproducible means the same work, not the same wall time.** Fix seeds and step counts; let
#   time only stop a run that would otherwise break its budget.
# - **Measure what is stored, where it is stored**: bytes on disk, not parameters in a formula.
# - **A claim is a prediction of what someone else will measure.** Tolerances are set by the
#   noise between honest runs; anything larger is a different result.
# - **What breaks at scale**: on many machines, GPU kernels that use atomics are not even
#   deterministic on one machine; large runs checkpoint and resume, so "the same run" includes
#   the data order after a restart; and a budget of GPU hours is shared with queueing time.
#
# Now the real thing: `tito capstone start` writes `capstone/project.py` (and its notebook) in
# your workspace - a task, a baseline that runs, and the optimised system for you to design.
# `tito capstone submit --quick` rehearses on less data; `tito capstone submit` re-runs it under
# the full budget and writes `capstone/submission.json`.

# %% nbgrader={"grade": true, "grade_id": "check-capstone", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("20")
