"""tito: the TinyTorch course companion (registry, workspaces, checks, milestones)."""

__version__ = "0.1.0"
