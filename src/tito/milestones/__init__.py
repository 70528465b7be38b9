"""The milestones: one script per milestone (`mNN_slug.py`, one function per part), run in a
subprocess by `tito milestone run` (see docs/MILESTONES.md for the protocol).

    common.py   RunContext, TrainingWitness, NaN detection and the plots every milestone shares
    runner.py   the subprocess entry point: `python -m tito.milestones.runner 03 2 --out DIR`

Nothing here imports `tinytorch` at import time: the parent process (the CLI) must never load the
learner's package, and the subprocess must load exactly the one it was pointed at.
"""
