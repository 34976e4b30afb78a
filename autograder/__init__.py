"""Autograder for the PyTorch course: sandboxed, device-aware checks against reference solutions."""

__version__ = "0.1.0"
