"""Course settings an instructor chooses: ``solutions/course.toml``.

::

    # solutions/course.toml
    hints = "concept"          # the course's default

    [assignment.a2_softmax]
    hints = "formula"          # this assignment only

Precedence, highest first: the assignment's table, the course's top level, the default. The file
is optional. A bad value is an error that names the file and the table it came from.

``hints`` sets how much a failed check tells the student. ``"concept"`` (the default) points at
the idea and the symptom ("subtract the maximum along dim before exp"); ``"formula"`` also shows
the formula-level hint an author gave with ``hint(..., formula=...)``. At ``"concept"``, ``grade
build`` also removes those formulas from the public checks it releases.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COURSE_FILE = "course.toml"
HINT_LEVELS = ("concept", "formula")
DEFAULT_HINTS = "concept"


class SettingsError(ValueError):
    """``course.toml`` is unreadable or holds a value that is not allowed."""


@dataclass(frozen=True)
class AssignmentSettings:
    """The settings in force for one assignment."""

    hints: str = DEFAULT_HINTS


def _load(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path} could not be read: {exc}") from None


def _hints(value: Any, where: str) -> str:
    if value not in HINT_LEVELS:
        raise SettingsError(f"Invalid hints {value!r} from {where}: use one of "
                            f"{', '.join(repr(level) for level in HINT_LEVELS)}")
    return str(value)


def assignment_settings(solutions_dir: Path, name: str) -> AssignmentSettings:
    """Resolve the settings of assignment ``name`` from ``solutions_dir/course.toml``."""
    path = solutions_dir / COURSE_FILE
    if not path.is_file():
        return AssignmentSettings()
    data = _load(path)
    known = {"hints", "assignment"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(f"{path}: unknown setting {', '.join(unknown)}; known: hints, "
                            "[assignment.<name>]")
    hints = _hints(data.get("hints", DEFAULT_HINTS), str(path))
    tables = data.get("assignment", {})
    if not isinstance(tables, dict):
        raise SettingsError(f"{path}: 'assignment' must be tables such as [assignment.{name}]")
    mine = tables.get(name, {})
    if not isinstance(mine, dict):
        raise SettingsError(f"{path}: [assignment.{name}] must be a table")
    unknown = sorted(set(mine) - {"hints"})
    if unknown:
        raise SettingsError(f"{path} [assignment.{name}]: unknown setting {', '.join(unknown)}; "
                            "known: hints")
    if "hints" in mine:
        hints = _hints(mine["hints"], f"{path} [assignment.{name}]")
    return AssignmentSettings(hints=hints)
