"""`grade watch`: grade each submission as it reaches nbgrader's exchange, and release its feedback.

One round (:meth:`Watcher.poll`), every few seconds:

1. new entries of the assignment in the exchange's ``inbound/`` -> ``nbgrader collect --update``
   (nbgrader keeps each student's latest submission in ``submitted/``);
2. each student whose collected submission (its ``timestamp.txt``) has not been graded -> graded
   in the sandbox as ``grade course autograde --student`` grades it (gradebook, ``autograded/``,
   ``grades/<a>/``), unless the student is over ``--max-submissions`` or inside ``--cooldown``;
3. each student whose latest graded submission has no released feedback ->
   ``nbgrader generate_feedback`` and ``release_feedback`` for that student, so that
   ``nbgrader fetch_feedback`` finds it.

What is done is written to ``grades/<a>/watch.json`` (atomically) after every step, and every
step can be done twice without harm (collect is idempotent; a submission whose file was already
graded is reused, not graded again; feedback is regenerated from the same notebook). So a
watcher killed at any moment (``kill -9``) and started again loses nothing and grades nothing
twice.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autograder.course import CourseError
from autograder.grading.config import GradeConfig
from autograder.integrations.nbgrader_course import CONFIG_FILE, autograde, layout, read_timestamp
from autograder.results import read_submission, safe_name, write_atomic

STATE_FILE = "watch.json"


@dataclass
class WatchState:
    seen: list[str] = field(default_factory=list)  # inbound entries already collected
    graded: dict[str, list[str]] = field(default_factory=dict)  # student -> timestamps graded
    graded_at: dict[str, float] = field(default_factory=dict)  # student -> when last graded
    released: dict[str, str] = field(default_factory=dict)  # student -> timestamp of its feedback
    refused: dict[str, str] = field(default_factory=dict)  # student -> timestamp not graded (limit)

    @classmethod
    def load(cls, path: Path) -> WatchState:
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, TypeError) as exc:
            raise CourseError(f"{path} is unreadable ({exc}); move it away to start afresh (every "
                              "submission is then checked again; none is graded twice)") from None

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(asdict(self), indent=1) + "\n")


class Watcher:
    """Grade ``assignment`` of the nbgrader course in ``course_dir`` as submissions arrive."""

    def __init__(self, course_dir: Path, assignment: str, *, config: GradeConfig,
                 max_submissions: int | None = None, cooldown_s: float = 0.0,
                 say: Callable[[str], None] = print) -> None:
        self.course = layout(course_dir)
        self.assignment = assignment
        self.config = config
        self.max_submissions = max_submissions
        self.cooldown_s = cooldown_s
        self.say = say
        self.out_dir = self.course.root / "grades" / assignment
        self.state_path = self.out_dir / STATE_FILE
        self.state = WatchState.load(self.state_path)
        self.api = _nbgrader_api(self.course.root)
        self.inbound = Path(self.api.exchange_root) / self.api.course_id / "inbound"

    def run(self, *, interval_s: float, rounds: int | None = None) -> None:
        """Poll every ``interval_s`` seconds (``rounds`` times, or until interrupted)."""
        done = 0
        while rounds is None or done < rounds:
            self.poll()
            done += 1
            if rounds is None or done < rounds:
                time.sleep(interval_s)

    def poll(self) -> None:
        self._collect()
        for student, timestamp in self._collected():
            self._grade(student, timestamp)
        for student, timestamps in self.state.graded.items():
            if timestamps and self.state.released.get(student) != timestamps[-1]:
                self._release(student, timestamps[-1])

    def _save(self) -> None:
        self.state.save(self.state_path)

    def _collect(self) -> None:
        entries = sorted(p.name for p in self.inbound.glob(f"*+{self.assignment}+*")) \
            if self.inbound.is_dir() else []
        new = [e for e in entries if e not in self.state.seen]
        if not new:
            return
        outcome = self.api.collect(self.assignment, update=True)
        if not outcome.get("success"):
            self.say(f"nbgrader collect failed (tried again next round): {outcome.get('error', '')[-500:]}")
            return
        self.state.seen.extend(new)
        self._save()
        self.say(f"collected {len(new)} new submission{'s' if len(new) != 1 else ''}")

    def _collected(self) -> list[tuple[str, str]]:
        found = []
        for folder in sorted(self.course.submitted.glob(f"*/{self.assignment}")):
            timestamp = read_timestamp(folder)
            if timestamp:
                found.append((folder.parent.name, timestamp))
        return found

    def _grade(self, student: str, timestamp: str) -> None:
        graded = self.state.graded.setdefault(student, [])
        if timestamp in graded:
            return
        if self.max_submissions is not None and len(graded) >= self.max_submissions:
            if self.state.refused.get(student) != timestamp:
                self.state.refused[student] = timestamp
                self._save()
                self.say(f"not graded: {student}'s submission of {timestamp} (already "
                         f"{len(graded)} graded, --max-submissions {self.max_submissions})")
            return
        wait = self.state.graded_at.get(student, 0.0) + self.cooldown_s - time.time()
        if wait > 0:
            return  # graded in a later round, if it is still the latest then
        before = read_submission(self.out_dir / "submissions" / f"{safe_name(student)}.json")
        results, _ = autograde(self.course.root, self.assignment, config=self.config, students=(student,))
        [result] = results
        reused = before is not None and before.sha256 == result.sha256 and before.sha256 != ""
        graded.append(timestamp)
        self.state.graded_at[student] = time.time()
        self._save()
        problem = f" ({result.error})" if result.error else ""
        self.say(f"{'already graded' if reused else 'graded'} {student} ({timestamp}): "
                 f"{result.points:g} / {result.max_points:g}{problem}")

    def _release(self, student: str, timestamp: str) -> None:
        for step in (self.api.generate_feedback, self.api.release_feedback):
            with warnings.catch_warnings():  # nbgrader 0.9 passes a misspelt argument to traitlets
                warnings.simplefilter("ignore", DeprecationWarning)
                outcome = step(self.assignment, student)
            if not outcome.get("success"):
                self.say(f"{step.__name__} for {student} failed (tried again next round): "
                         f"{outcome.get('error', '')[-500:]}")
                return
        self.state.released[student] = timestamp
        self._save()
        self.say(f"feedback released to {student} ({timestamp})")

def _nbgrader_api(course: Path) -> Any:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import Config, PyFileConfigLoader

    config = Config(PyFileConfigLoader(CONFIG_FILE, path=str(course)).load_config())
    return NbGraderAPI(coursedir=CourseDirectory(config=config, root=str(course.resolve())), config=config)
