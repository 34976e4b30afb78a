"""Autograder for the PyTorch course: sandboxed, device-aware checks against reference solutions."""

import sys

__version__ = "0.1.0"

# nbformat validates notebooks with jsonschema, which imports rfc3987_syntax wherever it is
# installed (nbgrader's dependencies bring it), and that module compiles a grammar on import:
# about 2 s of every `grade` command. No notebook schema uses its formats, and jsonschema treats
# the module as optional, so it is kept out of processes that import this package.
if "jsonschema" not in sys.modules:
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
