"""Item analysis of graded submissions: which checks tell strong and weak students apart.

Everything here is computed from ``results.json`` (:class:`~autograder.results.SubmissionResult`),
one assignment at a time; :mod:`autograder.analysis_page` draws and writes it.

- A *check* is one check on one device (``softmax_large_logits`` on cpu), public or hidden. Its
  pass rate counts the submissions it ran on (skipped runs do not count).
- **Discrimination**, two classic measures (as in test theory's item analysis):
  the *point-biserial* correlation between passing the check (0 or 1) and the submission's
  total score *without that check's own points* (the corrected item-total correlation, so a
  heavy check does not correlate with itself), and the *upper-lower index*: the pass rate among
  the top 27% of submissions by total score minus that among the bottom 27%. A check that
  everyone passes, or no one, tells nothing (both undefined). A check is flagged when either
  measure is below :data:`LOW_DISCRIMINATION` (negative: strong students fail it more often
  than weak ones, which usually means the check, not the students, is wrong). With a few dozen
  submissions both are noisy: the page shows how many submissions each rests on.
- **Failure messages** are grouped by their first line with numbers replaced by ``#`` (the
  values in "expected 1.327, got 7.96" differ per student, the mistake does not).
- A property check whose points were withheld (its exercise's values were wrong) counts as
  passed here: it did what it measures.
- **Limits**: submissions stopped by a time or memory limit, found by the sandbox's own words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from autograder.results import CheckRun, SubmissionResult

LOW_DISCRIMINATION = 0.2
"""Point-biserial or upper-lower index below this flags a check (0.2 is the usual rule of thumb)."""
TAIL = 0.27
"""The fraction of submissions in the upper and in the lower group (Kelley's 27%)."""
LIMIT_PATTERNS = {
    "time": re.compile(r"timed out after|whole time budget|previous \d+ checks of this exercise timed out"),
    "memory": re.compile(r"memory limit .* exceeded|MemoryError|out of memory"),
    "scratch": re.compile(r"MiB to its working|files in its working"),
}


@dataclass(frozen=True)
class CheckStats:
    """One check on one device, over the submissions it ran on."""

    assignment: str
    exercise: str
    name: str
    device: str
    hidden: bool
    max_points: float
    ran: int
    passed: int
    point_biserial: float | None
    upper_lower: float | None
    failures: list[tuple[str, int, list[str]]] = field(default_factory=list)
    """The most common failure messages: (message with numbers as #, count, students)."""

    @property
    def pass_rate(self) -> float:
        return self.passed / self.ran if self.ran else 0.0

    @property
    def flag(self) -> str:
        """Why the check needs a look, or ""."""
        if self.ran and self.passed == self.ran:
            return "everyone passed: it tells nothing apart"
        if self.ran and self.passed == 0:
            return "no one passed: is the check (or the exercise) right?"
        measures = [m for m in (self.point_biserial, self.upper_lower) if m is not None]
        if any(m < 0 for m in measures):
            return "strong submissions fail it more often than weak ones: look at the check"
        if any(m < LOW_DISCRIMINATION for m in measures):
            return "discriminates badly"
        return ""


@dataclass(frozen=True)
class LimitHit:
    student: str
    kind: str  # time, memory or scratch
    message: str


@dataclass(frozen=True)
class AssignmentAnalysis:
    assignment: str
    submissions: int
    errors: int  # submissions that could not be graded at all
    max_points: float
    totals: dict[str, float]  # student -> points
    exercises: dict[str, dict[str, float]]  # exercise -> student -> points
    exercise_max: dict[str, float]
    checks: list[CheckStats]
    limits: list[LimitHit]

    @property
    def mean_percent(self) -> float:
        if not self.totals or not self.max_points:
            return 0.0
        return 100 * sum(self.totals.values()) / (len(self.totals) * self.max_points)


def normalise_message(message: str) -> str:
    """The first line of ``message`` with every number replaced by ``#``."""
    first = message.strip().splitlines()[0] if message.strip() else "(no message)"
    # a number on its own, not the digits of a name (softmax_1d, float32)
    return re.sub(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])", "#", first)


def point_biserial(passed: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Pearson's correlation of a 0/1 item with ``scores``; None where either does not vary."""
    n = len(passed)
    if n < 2 or len(scores) != n:
        return None
    xs = [1.0 if p else 0.0 for p in passed]
    mx, my = sum(xs) / n, sum(scores) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, scores, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in scores)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def upper_lower(passed: Sequence[bool], scores: Sequence[float], *, tail: float = TAIL) -> float | None:
    """Pass rate among the top ``tail`` of ``scores`` minus that among the bottom ``tail``."""
    n = len(passed)
    k = math.ceil(tail * n)
    if n < 2 or 2 * k > n or k == 0 or len(set(passed)) < 2:
        return None
    order = sorted(range(n), key=lambda i: scores[i])
    bottom, top = order[:k], order[-k:]
    return (sum(passed[i] for i in top) - sum(passed[i] for i in bottom)) / k


def analyse(results: Iterable[SubmissionResult], *, assignment: str | None = None,
            top_failures: int = 3) -> AssignmentAnalysis:
    """Item analysis of one assignment's ``results``."""
    results = list(results)
    name = assignment or (results[0].assignment if results else "")
    graded = [r for r in results if r.status == "graded"]
    totals = {r.student: r.points for r in results}
    exercise_max: dict[str, float] = {}
    exercises: dict[str, dict[str, float]] = {}
    for r in results:
        for e in r.exercises:
            exercise_max.setdefault(e.exercise, e.max_points)
            exercises.setdefault(e.exercise, {})[r.student] = e.points
    keyed: dict[tuple[str, str, str, bool], list[tuple[SubmissionResult, CheckRun]]] = {}
    for r in graded:
        for c in r.checks:
            if not c.skipped:
                keyed.setdefault((c.exercise, c.name, c.device, c.hidden), []).append((r, c))
    checks = []
    for (exercise, check_name, device, hidden), rows in keyed.items():
        # the check's own verdict: a withheld property check passed (its points wait on the
        # exercise's value checks, a scoring rule, not something this check measured)
        passed = [c.passed for _, c in rows]
        rest = [r.points - c.points for r, c in rows]  # the corrected item-total
        groups: dict[str, list[str]] = {}
        for (r, c), ok in zip(rows, passed, strict=True):
            if not ok:
                groups.setdefault(normalise_message(c.message), []).append(r.student)
        failures = sorted(((m, len(s), s) for m, s in groups.items()), key=lambda g: -g[1])
        checks.append(CheckStats(
            assignment=name, exercise=exercise, name=check_name, device=device, hidden=hidden,
            max_points=max(c.max_points for _, c in rows), ran=len(rows), passed=sum(passed),
            point_biserial=point_biserial(passed, rest), upper_lower=upper_lower(passed, rest),
            failures=failures[:top_failures]))
    checks.sort(key=lambda c: (list(exercise_max).index(c.exercise) if c.exercise in exercise_max else 0,
                               c.hidden, c.name, c.device))
    return AssignmentAnalysis(
        assignment=name, submissions=len(results), errors=len(results) - len(graded),
        max_points=max((r.max_points for r in results), default=0.0), totals=totals,
        exercises=exercises, exercise_max=exercise_max, checks=checks, limits=limit_hits(results))


def limit_hits(results: Iterable[SubmissionResult]) -> list[LimitHit]:
    """Submissions stopped by a time, memory or scratch limit: one line per student and kind."""
    hits: dict[tuple[str, str], str] = {}
    for r in results:
        texts = [r.error or "", *(e.problem or "" for e in r.exercises), *(c.message for c in r.checks)]
        for text in texts:
            for kind, pattern in LIMIT_PATTERNS.items():
                if pattern.search(text) and (r.student, kind) not in hits:
                    hits[r.student, kind] = text.strip().splitlines()[0]
    return [LimitHit(student, kind, message) for (student, kind), message in hits.items()]
