"""Module checks: pytest files run against a learner's file (or the reference)."""
