"""The ``grade`` command: the only module that imports click. Parse, call the core, print, exit.

The core (torch, nbformat, pytest, the sandbox) is imported inside each command, never here, so
``grade --help`` and a mistyped option answer at once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from autograder.course import CourseError, available, find_solutions_dir, load_assignment, shown
from autograder.grading.config import DEVICES
from autograder.isolation.config import GIB, MIB, SandboxConfig

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from autograder.audit import Audit
    from autograder.integrations.cluster import Cluster
    from autograder.results import SubmissionResult

F = TypeVar("F", bound=Callable[..., Any])
LIMITS = SandboxConfig()  # the defaults of every limit option
PIPE_WIDTH = 200  # columns of output that is not a terminal


class Context:
    """Shared options: where the course material lives, and the console to print to."""

    def __init__(self, solutions: Path | None) -> None:
        self.solutions_option = solutions
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            import os

            from rich.console import Console

            # a file or a pipe: wide enough that no table is cut (rich assumes 80 columns)
            wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
            self._console = Console(stderr=False, highlight=False, width=PIPE_WIDTH if wide else None)
        return self._console

    @property
    def solutions(self) -> Path:
        try:
            return (self.solutions_option or find_solutions_dir()).resolve()
        except CourseError as exc:
            raise click.UsageError(str(exc)) from None


def _devices(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    devices = tuple(d.strip() for d in value.split(",") if d.strip())
    bad = [d for d in devices if d not in DEVICES]
    if bad or not devices:
        raise click.BadParameter(f"{value!r}: use a comma-separated list of {', '.join(DEVICES)}.")
    return devices


def _positive(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if value <= 0:
        raise click.BadParameter(f"Should be positive, got {value}.")
    return value


def _options(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Apply several click options at once, in the order given."""
    def apply(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command
    return apply


devices_option = click.option(
    "--devices", default=",".join(DEVICES), show_default=True, callback=_devices,
    help="Devices to check on; cuda checks are skipped, with the reason, without a GPU.")

workers_option = click.option(
    "--workers", type=click.IntRange(min=1), default=None,
    help="Submissions graded at once, each by a grader process with its own sandbox. Default: one "
         "per usable CPU core, at most one per 100 submissions (a grader takes seconds to start); "
         "when cuda checks run, at most 4 per GPU, since every grader and sandbox holds a CUDA "
         "context of its own on the shared device.")

limit_options = _options(
    click.option("--check-timeout", default=LIMITS.check_timeout_s, show_default=True,
                 callback=_positive, help="Seconds one check may take before the sandbox is killed."),
    click.option("--submission-timeout", default=LIMITS.submission_timeout_s, show_default=True,
                 callback=_positive, help="Seconds all checks of one submission may take together."),
    click.option("--memory-gib", default=(LIMITS.memory_bytes or 0) / GIB, show_default=True,
                 callback=_positive, help="Address-space limit of the sandbox (cpu-only runs)."),
    click.option("--scratch-mib", default=(LIMITS.scratch_bytes or 0) / MIB, show_default=True,
                 callback=_positive,
                 help="What one submission may write to its working directory, all files together "
                      "(a tmpfs when grade runs as root; measured otherwise)."),
)

cluster_options = _options(
    click.option("--scheduler", metavar="ADDRESS", default=None,
                 help="Grade on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786) "
                      "instead of this machine. Needs `pip install 'torchgrade[cluster]'` here and "
                      "the course installed on every worker; cuda checks run only on workers "
                      "started with --resources GPU=1."),
    click.option("--worker-solutions", metavar="DIR", default=None,
                 help="With --scheduler: the solutions/ folder on the workers. Default: the same "
                      "path as here where a worker has it, else the worker's ./solutions or the "
                      "one beside its autograder package."),
)


def sandbox_config(*, check_timeout: float, submission_timeout: float, memory_gib: float,
                   scratch_mib: float) -> SandboxConfig:
    """The limits that :data:`limit_options` gave."""
    from dataclasses import replace

    return replace(LIMITS, check_timeout_s=check_timeout, submission_timeout_s=submission_timeout,
                   memory_bytes=int(memory_gib * GIB), scratch_bytes=int(scratch_mib * MIB))


def connect_cluster(scheduler: str | None, *, workers: int | None,
                    worker_solutions: str | None) -> Cluster | None:
    """The Dask cluster to grade on, if --scheduler names one; refuse options that clash."""
    if scheduler is not None and workers is not None:
        raise click.UsageError("--workers sets how many submissions this machine grades at once; "
                               "with --scheduler the cluster's workers grade (start more of them)")
    if worker_solutions is not None and scheduler is None:
        raise click.UsageError("--worker-solutions needs --scheduler")
    if scheduler is None:
        return None
    from autograder.integrations.cluster import ClusterError, connect

    try:
        return connect(scheduler)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.option("--solutions", type=click.Path(file_okay=False, path_type=Path),
              help="The instructor's solutions/ folder. Default: ./solutions, else the one "
                   "beside the autograder package.")
@click.option("--no-server", is_flag=True,
              help="Run this command in its own process, not in the grading server (see `grade "
                   "server --help`). TORCHGRADE_SERVER=off does the same for every command.")
@click.pass_context
def cli(ctx: click.Context, solutions: Path | None, no_server: bool) -> None:
    """Grade PyTorch exercises against reference solutions, in a sandbox, on cpu and cuda."""
    ctx.obj = Context(solutions)


@cli.command()
@click.argument("assignment")
@click.argument("submissions", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("results"), show_default=True,
              help="Folder for results.json, results.csv and one JSON file per submission.")
@devices_option
@limit_options
@click.option("--public-only", is_flag=True, help="Run only the checks students can see.")
@click.option("--rerun", is_flag=True,
              help="Grade again even where a result for the same file is already in --out.")
@workers_option
@cluster_options
@click.pass_obj
def run(obj: Context, assignment: str, submissions: tuple[Path, ...], out_dir: Path,
        devices: tuple[str, ...], check_timeout: float, submission_timeout: float,
        memory_gib: float, scratch_mib: float, public_only: bool, rerun: bool, workers: int | None,
        scheduler: str | None, worker_solutions: str | None) -> None:
    """Grade SUBMISSIONS of ASSIGNMENT against the reference solutions.

    SUBMISSIONS are .ipynb or .py files, folders of them (one per student, named by file), or
    nbgrader's submitted/ folder (submitted/<student>/<assignment>/*.ipynb). Exit status is 0
    when grading worked, whatever the scores.
    """
    from functools import partial

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from autograder.isolation.launch import SandboxStartError, setup_imports, warm_up

    try:
        spec = load_assignment(assignment, obj.solutions)
    except CourseError as exc:
        raise click.UsageError(str(exc)) from None
    sandbox = sandbox_config(check_timeout=check_timeout, submission_timeout=submission_timeout,
                             memory_gib=memory_gib, scratch_mib=scratch_mib)
    if scheduler is None and workers in (None, 1):
        # likely graded in this process (a pool only from 100s of submissions): boot the fork
        # server now, while this process imports torch and runs the reference
        warm_up(sandbox, preload=setup_imports([{"id": "setup", "source": spec.setup_source}]))

    from autograder.grading.batch import discover, grade_batch
    from autograder.grading.config import GradeConfig
    from autograder.grading.pool import default_workers
    from autograder.report import write_feedback_pages

    found = discover(list(submissions), assignment)
    if not found:
        raise click.UsageError(f"no .ipynb or .py submissions found in {', '.join(map(str, submissions))}")
    cluster = connect_cluster(scheduler, workers=workers, worker_solutions=worker_solutions)
    config = GradeConfig(devices=devices, sandbox=sandbox, include_hidden=not public_only)
    console = obj.console
    if cluster is not None:
        skipped = cluster.plan(devices).skipped
        if skipped:
            console.print(f"cuda checks {skipped}")
        where = f"on {len(cluster.workers())} Dask workers"
        grade = partial(cluster.grade_batch, solutions=(worker_solutions or str(obj.solutions),),
                        fallback=worker_solutions is None)
    else:
        count = workers or default_workers(len(found), devices=devices)
        where = f"{count} at a time"
        grade = partial(grade_batch, workers=count)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task(f"grading {assignment} ({where})", total=len(found), rate="")

        def advance(result: SubmissionResult) -> None:
            done = progress.tasks[task].completed + 1
            elapsed = progress.tasks[task].elapsed or 1e-9
            progress.update(task, advance=1, rate=f"{done / elapsed:.2f}/s")

        try:
            results = grade(found, assignment=spec, config=config, out_dir=out_dir,
                            on_result=advance, rerun=rerun)
        except CourseError as exc:
            raise click.ClickException(f"the checks of {assignment} are broken: {exc}") from None
        except SandboxStartError as exc:
            raise click.ClickException(f"grading stopped, results so far are in {out_dir}: {exc}") from None
        finally:
            if cluster is not None:
                cluster.close()
    write_feedback_pages(results, out_dir)
    console.print(summary_table(results, spec.name, width=console.width))
    errors = [r for r in results if r.status == "error"]
    console.out(f"{len(results)} graded, {len(errors)} with errors. "
                f"Results: {out_dir / 'results.json'}, {out_dir / 'results.csv'}; "
                f"a feedback page per student in {out_dir / 'feedback'}")


def summary_table(results: list[SubmissionResult], assignment: str, *, width: int = 100) -> Table:
    """One row per submission: points per exercise, total, and the first problem found."""
    from rich.table import Table

    exercises = [e.exercise for e in results[0].exercises] if results else []
    rows = []
    for r in results:
        cells = {e.exercise: f"{e.points:g}/{e.max_points:g}" for e in r.exercises}
        first_fail = next((c for c in r.checks if not c.passed and not c.skipped), None)
        note = r.error or (f"{first_fail.name}: {first_fail.message}" if first_fail else "")
        note = note.replace("not implemented yet: the stub still raises NotImplementedError().",
                            "not implemented")
        rows.append([r.student[:16], *(cells.get(e, "-") for e in exercises),
                     f"{r.points:g}/{r.max_points:g}", note.splitlines()[0] if note else ""])
    headers = ["student", *exercises, "total"]
    table = Table(title=f"{assignment}: {len(results)} submissions")
    used = 4
    for i, header in enumerate(headers):
        # the fixed columns keep their width; only the problem column gives way
        column_width = max([len(header)] + [len(row[i]) for row in rows])
        used += column_width + 3
        table.add_column(header, justify="left" if i == 0 else "right", no_wrap=True,
                         min_width=column_width, style="bold" if header == "total" else None)
    room = max(width - used, 16)
    table.add_column("first problem", no_wrap=True, max_width=room)
    for row in rows:
        note = row[-1]
        table.add_row(*row[:-1], note if len(note) <= room else note[: room - 1] + "…")
    return table


@cli.command()
@click.argument("assignments", nargs=-1)
@click.option("--out", "out_root", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Where to write. Default: assignments/ beside solutions/.")
@click.option("--check", "check_only", is_flag=True,
              help="Write nothing; exit 1 if any generated file is out of date.")
@click.pass_obj
def build(obj: Context, assignments: tuple[str, ...], out_root: Path | None, check_only: bool) -> None:
    """Validate ASSIGNMENTS (default: all), then generate what students get in assignments/.

    Refuses (exit 1, naming file and line) an assignment whose notebook, checks and points
    disagree: a check naming an exercise the notebook lacks, an exercise without checks, check
    weights that do not add up to the check cell's points, duplicate or missing grade ids, a
    check cell without its hidden-test region, a reference that fails any of its own checks or
    disagrees with a declared oracle. Then writes the stubbed notebook, the public checks, the
    probes and expected.json (the reference's answers to the public checks).
    """
    from autograder.build import stale_files, write_build

    solutions = obj.solutions
    out_root = out_root or solutions.parent / "assignments"
    names = assignments or tuple(available(solutions))
    stale: list[str] = []
    for name in names:
        try:
            spec = load_assignment(name, solutions)
            if check_only:
                stale.extend(str(path) for path in stale_files(spec, out_root))
            else:
                for path in write_build(spec, out_root):
                    obj.console.out(f"wrote {shown(path)}")
        except CourseError as exc:
            raise click.ClickException(str(exc)) from None
    if stale:
        obj.console.print("out of date (run `grade build`):\n  " + "\n  ".join(stale))
        sys.exit(1)


@cli.command("new")
@click.argument("name")
@click.option("--exercise", "exercises", multiple=True, required=True, metavar="NAME",
              help="An exercise: the name of the function students write (repeat it).")
@click.option("--points", default=10.0, show_default=True, callback=_positive,
              help="Points per exercise (its check cell's points).")
@click.pass_obj
def new(obj: Context, name: str, exercises: tuple[str, ...], points: float) -> None:
    """Create the skeleton of assignment NAME in solutions/NAME/.

    \b
    It works as it is: the next steps are
      grade build NAME     # validate, then write assignments/NAME/ for students
      grade audit NAME     # grade the stub, the reference, constant answers, the variants
    Then replace every TODO (prose, reference, checks, variants), running both again. The
    guide is docs/authoring.md. Never overwrites an existing assignment.
    """
    from autograder.scaffold import scaffold

    solutions = (obj.solutions_option or Path("solutions")).resolve()
    try:
        written = scaffold(solutions, name, list(exercises), points=points)
    except CourseError as exc:
        raise click.UsageError(str(exc)) from None
    for path in written:
        obj.console.out(f"wrote {shown(path)}")
    option = "" if obj.solutions_option is None else f" --solutions {obj.solutions_option}"
    obj.console.out(f"next: grade{option} build {name}, then grade{option} audit {name}")


@cli.command()
@click.argument("assignments", nargs=-1)
@devices_option
@workers_option
@click.pass_obj
def audit(obj: Context, assignments: tuple[str, ...], devices: tuple[str, ...],
          workers: int | None) -> None:
    """Self-test ASSIGNMENTS (default: all) before students see them.

    Grades, exactly as students are graded: the stub (must score 0), the reference (full marks),
    constant answers of the right type (0), every correct variant of variants.py (full marks)
    and every wrong one (loses points in its exercise only, fails the checks its header names).
    Reports checks that no mistake ever fails. Exit status 1 on any problem; advice (too few
    variants) does not fail.
    """
    from autograder.audit import audit as run_audit
    from autograder.grading.config import GradeConfig
    from autograder.grading.pool import default_workers

    solutions = obj.solutions
    names = assignments or tuple(available(solutions))
    failed = []
    for name in names:
        try:
            spec = load_assignment(name, solutions)
        except CourseError as exc:
            raise click.UsageError(str(exc)) from None
        config = GradeConfig(devices=devices)
        count = workers or default_workers(60, devices=devices)
        with obj.console.status(f"auditing {name}: grading the stub, the reference, constant "
                                "answers and every variant"):
            try:
                result = run_audit(spec, config=config, workers=count)
            except CourseError as exc:
                raise click.ClickException(str(exc)) from None
        obj.console.print(audit_table(result))
        obj.console.print(checks_table(result))
        for line in result.advice:
            obj.console.print(f"advice: {line}")
        for line in result.problems:
            obj.console.print(f"[red]problem:[/red] {line}")
        verdict = "clean" if result.ok else f"{len(result.problems)} problems"
        obj.console.print(f"{name}: audit {verdict}")
        if not result.ok:
            failed.append(name)
    if failed:
        sys.exit(1)


def audit_table(result: Audit) -> Table:
    """One row per audited submission: what it is, what it must score, what it scored.

    "less" means less than full marks in the variant's own exercise (the label's prefix) and
    full marks in the others."""
    from rich.table import Table

    exercises = list(result.rows[0].points) if result.rows else []
    table = Table(title=f"grade audit {result.assignment}: submissions")
    longest = max((len(row.label) for row in result.rows), default=10)
    table.add_column("submission", overflow="fold", min_width=min(longest, 48))
    table.add_column("must", no_wrap=True)
    for header in (*exercises, "total", "verdict"):  # the numbers never wrap or shrink
        table.add_column(header, no_wrap=True, min_width=max(len(header), 7))
    for row in result.rows:
        cells = [f"{p:g}/{m:g}" for p, m in (row.points.get(e, (0, 0)) for e in exercises)]
        points, max_points = row.total
        verdict = "ok" if not row.problems else "PROBLEM"
        table.add_row(row.label, row.expected, *cells, f"{points:g}/{max_points:g}",
                      verdict, style=None if not row.problems else "red")
    return table


def checks_table(result: Audit) -> Table:
    """One row per check: its exercise, kind, points, and the wrong variants that fail it."""
    from rich.table import Table

    table = Table(title=f"grade audit {result.assignment}: checks")
    for header in ("check", "exercise", "kind", "points", "failed by"):
        table.add_column(header)
    for use in result.checks:
        caught = ", ".join(label.split(":", 1)[1] for label in use.failed_by)
        if not caught and use.cuda_only:
            caught = "on cuda only: " + ", ".join(label.split(":", 1)[1] for label in use.cuda_only)
        table.add_row(("hidden: " if use.hidden else "") + use.name, use.exercise, use.kind,
                      f"{use.points:g}", caught or "NOTHING", style=None if caught else "red")
    return table


@cli.command()
@click.option("--out", "out_root", type=click.Path(file_okay=False, path_type=Path),
              default=Path("demo"), show_default=True, help="Where to put the class and results.")
@devices_option
@click.pass_context
def demo(ctx: click.Context, out_root: Path, devices: tuple[str, ...]) -> None:
    """Create the demo class (12 students, every assignment) in nbgrader's layout, grade it,
    and write the instructor's item analysis (OUT/report/) and similarity pages
    (OUT/similarity/<assignment>/) of it."""
    from autograder.demo import make_class

    obj: Context = ctx.obj
    submitted = make_class(obj.solutions, out_root / "submitted")
    obj.console.out(f"demo class written to {submitted}")
    for name in available(obj.solutions):
        # the options not given here take their defaults (click fills them in)
        ctx.invoke(run, assignment=name, submissions=(submitted,), out_dir=out_root / "results" / name,
                   devices=devices)
    graded = tuple(out_root / "results" / name for name in available(obj.solutions))
    ctx.invoke(report_command, results=graded, out_dir=out_root / "report")
    for name in available(obj.solutions):
        ctx.invoke(similarity_command, assignment=name, submissions=(submitted,),
                   out_dir=out_root / "similarity" / name, threshold=0.5)


@cli.command("report")
@click.argument("results", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--gradebook", "course_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Analyse this nbgrader course's gradebook instead of results.json "
                                 "files: per graded cell, whoever graded it (nbgrader or grade).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("report"), show_default=True, help="Folder for index.html, PNGs and CSVs.")
@click.pass_obj
def report_command(obj: Context, results: tuple[Path, ...], course_dir: Path | None, out_dir: Path) -> None:
    """Item analysis for instructors: scores, pass rates and how well each check discriminates.

    RESULTS are results.json files, or folders holding one (`grade run`'s --out, or a course's
    grades/<assignment>/). Default: every grades/*/results.json here, else the gradebook of the
    nbgrader course here, else results/results.json. Writes OUT/index.html (it names students:
    not for them), a PNG of the score distributions and one of the check pass rates per
    assignment, a trend across assignments, and checks.csv, scores.csv and limits.csv with the
    same numbers. From a gradebook the items are graded cells, not checks: it holds no check
    results, failure messages or limits, only each cell's score.
    """
    from autograder.analysis_page import load_results, write_report

    if results and course_dir is not None:
        raise click.UsageError("give results.json files or --gradebook, not both")
    if course_dir is None and not results:
        results = tuple(sorted(Path("grades").glob("*/results.json")))
        if not results and (Path(".") / "nbgrader_config.py").is_file():
            course_dir = Path(".")
        elif not results and (Path("results") / "results.json").is_file():
            results = (Path("results") / "results.json",)
    if course_dir is not None:
        batches = _gradebook_batches(course_dir)
        source = f"the gradebook of {course_dir}"
    elif not results:
        raise click.UsageError("no results given, and neither grades/*/results.json, an nbgrader course "
                               "nor results/results.json here: pass a results.json or its folder, "
                               "or --gradebook COURSE")
    else:
        batches = []
        for path in results:
            try:
                batches.append(load_results(path))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise click.UsageError(f"{path}: not a results.json that grade wrote ({exc})") from None
        source = f"{len(batches)} results file{'s' if len(batches) != 1 else ''}"
    graded = [batch for batch in batches if batch]
    if not graded:
        raise click.UsageError(f"nothing to analyse in {source}: no graded submission")
    page = write_report(graded, out_dir)
    obj.console.out(f"item analysis of {len(graded)} assignment{'s' if len(graded) != 1 else ''} "
                    f"from {source}: {page} (with checks.csv, scores.csv, limits.csv)")


def _gradebook_batches(course_dir: Path) -> list[list]:
    """The submissions in the gradebook of the nbgrader course ``course_dir``, per assignment."""
    from autograder.integrations.nbgrader_course import gradebook, gradebook_results, layout

    try:
        with gradebook(layout(course_dir)) as gb:
            return gradebook_results(gb)
    except CourseError as exc:
        raise click.UsageError(str(exc)) from None


@cli.command("similarity")
@click.argument("assignment")
@click.argument("submissions", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("similarity"), show_default=True, help="Folder for index.html.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Show pairs whose similarity on an exercise is at least this (0 to 1).")
@click.pass_obj
def similarity_command(obj: Context, assignment: str, submissions: tuple[Path, ...], out_dir: Path,
                       threshold: float) -> None:
    """Find similar code between SUBMISSIONS of ASSIGNMENT, exercise by exercise.

    Compares each exercise's graded cells only (not the starter code or prose everyone shares),
    with comments, formatting and identifier names left out, by winnowed fingerprints as MOSS
    does: renamed variables, reordered functions and added comments do not hide a copy. Writes
    OUT/index.html: the pairs ranked, with the matching lines side by side. A match is a
    reason to look, never proof. SUBMISSIONS as for `grade run`.
    """
    from autograder.grading.batch import discover
    from autograder.similarity_page import similarity_report

    try:
        spec = load_assignment(assignment, obj.solutions)
    except CourseError as exc:
        raise click.UsageError(str(exc)) from None
    found = discover(list(submissions), assignment)
    if len(found) < 2:
        raise click.UsageError(f"{len(found)} submission(s) found in {', '.join(map(str, submissions))}: "
                               "need two or more to compare")
    released = obj.solutions.parent / "assignments" / assignment / f"{assignment}.ipynb"
    page, matches, unreadable = similarity_report(found, spec, released=released, out=out_dir,
                                                  threshold=threshold)
    for line in unreadable:
        obj.console.out(f"not compared: {line}")
    shown = [m for m in matches if m.similarity >= threshold]
    for m in shown[:10]:
        obj.console.out(f"{100 * m.similarity:5.0f}%  {m.exercise}: {m.a} and {m.b}")
    obj.console.out(f"{len(found)} submissions, {len(shown)} pairs at or above {100 * threshold:.0f}%: "
                    f"{page} (a reason to look, not proof)")


@cli.command("check")
@click.argument("notebooks", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@devices_option
@click.pass_obj
def check_command(obj: Context, notebooks: tuple[Path, ...], devices: tuple[str, ...]) -> None:
    """Run the public checks on your NOTEBOOKS, as the grader will see them.

    For students, from a terminal: `grade check a2_softmax.ipynb`. The notebook must sit in its
    assignment folder, next to public_checks.py and expected.json. Your code runs as it does when
    graded: the setup cell and your exercise cells only, in a sandbox; other cells do not run.
    Hidden checks run only when your instructor grades. Exit status 0 when the checks ran.
    """
    from autograder.isolation.launch import SandboxStartError, setup_imports, warm_up

    # the fork server boots, and imports what the setup cell needs, while this process imports torch
    warm_up(LIMITS, preload=setup_imports([{"id": "setup", "source": _released_setup(notebooks[0])}]))

    from autograder.course import assignment_from_manifest
    from autograder.grading.config import GradeConfig
    from autograder.grading.scoring import Submission, grade_submission
    from autograder.report import text_table
    from autograder.subjects import ReplaySubject

    config = GradeConfig(devices=devices, include_hidden=False)
    for path in notebooks:
        expected = path.parent / "expected.json"
        if not expected.is_file() or not (path.parent / "public_checks.py").is_file():
            raise click.UsageError(f"{path.parent} has no public_checks.py and expected.json: keep "
                                   "the notebook in the assignment folder you were given")
        try:
            spec = assignment_from_manifest(expected)
            result = grade_submission(Submission(student=path.stem, path=path), assignment=spec,
                                      config=config, reference=ReplaySubject(expected))
        except CourseError as exc:
            raise click.UsageError(str(exc)) from None
        except SandboxStartError as exc:
            raise click.ClickException(str(exc)) from None
        echo = obj.console.out
        later = spec.max_points - result.max_points
        echo(f"{path}: {result.points:g} / {result.max_points:g} points from the public checks"
             + (f" · {later:g} more points are graded by hidden checks after you submit"
                if later > 0 else ""))
        if result.error:
            echo(f"  {result.error}")
        points = {e.name: e.points for e in spec.exercises}
        for exercise in result.exercises:
            runs = [r for r in result.checks if r.exercise == exercise.exercise]
            for note in (exercise.problem, exercise.notice, exercise.cell_error):
                if note:
                    echo(f"  {exercise.exercise}: {note}")
            if runs:
                echo(text_table(runs, title=f"  {exercise.exercise}", hidden_points=max(
                    points.get(exercise.exercise, 0.0) - sum(r.max_points for r in runs), 0.0)))


def _released_setup(notebook: Path) -> str:
    """The setup cell recorded in the expected.json beside a released notebook ("" if none)."""
    import json

    try:
        return str(json.loads((notebook.parent / "expected.json").read_text())["assignment"]["setup"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


@cli.group()
def course() -> None:
    """Run a semester with nbgrader: set up the course folder, grade into its gradebook.

    \b
    The loop, from the course folder:
      grade course init .                       # nbgrader_config.py and source/<a>/
      nbgrader generate_assignment a1_logistic
      nbgrader release_assignment a1_logistic   # students: fetch_assignment, submit
      nbgrader collect a1_logistic
      grade course autograde a1_logistic        # sandboxed grading into the gradebook
      nbgrader generate_feedback a1_logistic
      nbgrader release_feedback a1_logistic     # students: fetch_feedback
      nbgrader export                           # grades.csv
    """


@course.command("init")
@click.argument("course_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--assignment", "names", multiple=True,
              help="An assignment to copy into source/ (repeat it). Default: all of them.")
@click.option("--course-id", default="torchgrade", show_default=True,
              help="nbgrader's course id (students name it in fetch and submit).")
@click.option("--exchange", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="nbgrader's exchange folder, written into the config. Default: nbgrader's.")
@click.pass_obj
def course_init(obj: Context, course_dir: Path, names: tuple[str, ...], course_id: str,
                exchange: Path | None) -> None:
    """Create or refresh the nbgrader course in COURSE_DIR.

    Writes nbgrader_config.py (only if missing; it keeps the hidden checks out of releases),
    student_nbgrader_config.py for students to save as ~/.jupyter/nbgrader_config.py (the
    course id and the exchange), and copies each assignment's notebook, checks and expected.json
    into source/<a>/. Run it again after editing solutions/ and `grade build`.
    """
    from autograder.integrations.nbgrader_course import init_course

    solutions = obj.solutions
    try:
        written = init_course(course_dir, solutions=solutions, built=solutions.parent / "assignments",
                              names=list(names) or available(solutions), course_id=course_id,
                              exchange=exchange)
    except CourseError as exc:
        raise click.UsageError(str(exc)) from None
    for path in written:
        obj.console.out(f"wrote {shown(path)}")
    obj.console.out(f"Students: each saves {shown(course_dir / 'student_nbgrader_config.py')} as "
                    "~/.jupyter/nbgrader_config.py (see the README's student set-up).")


@course.command("autograde")
@click.argument("assignment")
@click.option("--course", "course_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="The nbgrader course folder.")
@click.option("--student", "students", multiple=True, help="Grade only this student (repeat it).")
@devices_option
@limit_options
@click.option("--rerun", is_flag=True, help="Grade again submissions already graded (same file).")
@workers_option
@cluster_options
@click.pass_obj
def course_autograde(obj: Context, assignment: str, course_dir: Path, students: tuple[str, ...],
                     devices: tuple[str, ...], check_timeout: float, submission_timeout: float,
                     memory_gib: float, scratch_mib: float, rerun: bool, workers: int | None,
                     scheduler: str | None, worker_solutions: str | None) -> None:
    """Grade the collected submissions of ASSIGNMENT into nbgrader's gradebook.

    Replaces `nbgrader autograde`: submissions run in the sandbox, each check cell's auto_score
    is set in the gradebook, and autograded/<student>/ASSIGNMENT/ gets a notebook with the
    results (public checks in full, hidden ones as counts) for `nbgrader generate_feedback`.
    Results also go to <course>/grades/ASSIGNMENT/ (results.json, results.csv, feedback/).
    With --scheduler, the Dask cluster's workers grade; they find the assignment in the
    course's source/ folder at the same path, or in --worker-solutions.
    """
    from autograder.grading.config import GradeConfig
    from autograder.integrations.nbgrader_course import autograde
    from autograder.isolation.launch import SandboxStartError
    from autograder.report import write_feedback_pages

    sandbox = sandbox_config(check_timeout=check_timeout, submission_timeout=submission_timeout,
                             memory_gib=memory_gib, scratch_mib=scratch_mib)
    config = GradeConfig(devices=devices, sandbox=sandbox)
    cluster = connect_cluster(scheduler, workers=workers, worker_solutions=worker_solutions)
    try:
        results, out_dir = autograde(course_dir, assignment, config=config, students=students,
                                     rerun=rerun, workers=workers, cluster=cluster,
                                     worker_solutions=worker_solutions)
    except CourseError as exc:
        raise click.UsageError(str(exc)) from None
    except SandboxStartError as exc:
        raise click.ClickException(f"grading stopped: {exc}") from None
    finally:
        if cluster is not None:
            cluster.close()
    write_feedback_pages(results, out_dir)
    obj.console.print(summary_table(results, assignment, width=obj.console.width))
    obj.console.out(f"{len(results)} graded into the gradebook; results in {out_dir}")


@cli.command("watch")
@click.argument("assignment")
@click.option("--course", "course_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="The nbgrader course folder.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between two looks at the exchange.")
@click.option("--max-submissions", type=click.IntRange(min=1), default=None,
              help="Grade at most this many submissions per student; later ones are collected "
                   "(nbgrader keeps the latest) but not graded, and said so here.")
@click.option("--cooldown", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds after a student's graded submission before their next is graded.")
@devices_option
@limit_options
@click.pass_obj
def watch(obj: Context, assignment: str, course_dir: Path, interval: float, max_submissions: int | None,
          cooldown: float, devices: tuple[str, ...], check_timeout: float, submission_timeout: float,
          memory_gib: float, scratch_mib: float) -> None:
    """Grade each submission of ASSIGNMENT as it arrives, and release its feedback.

    Run it in the course folder while students submit: every few seconds it collects new
    submissions from nbgrader's exchange, grades each in the sandbox (as `grade course
    autograde` does: gradebook, autograded/, grades/), and runs nbgrader's generate_feedback and
    release_feedback for that student, who can `nbgrader fetch_feedback` a minute after
    submitting. Its progress is kept in grades/ASSIGNMENT/watch.json: stopped at any moment
    (even kill -9) and started again, it loses no submission and grades none twice. Ctrl-C stops it.
    """
    import datetime

    from autograder.grading.config import GradeConfig
    from autograder.integrations.watch import Watcher

    sandbox = sandbox_config(check_timeout=check_timeout, submission_timeout=submission_timeout,
                             memory_gib=memory_gib, scratch_mib=scratch_mib)

    def say(line: str) -> None:
        obj.console.out(f"{datetime.datetime.now():%H:%M:%S} {line}")

    try:
        watcher = Watcher(course_dir, assignment, config=GradeConfig(devices=devices, sandbox=sandbox),
                          max_submissions=max_submissions, cooldown_s=cooldown, say=say)
        say(f"watching {watcher.inbound} for {assignment} every {interval:g} s (Ctrl-C stops)")
        watcher.run(interval_s=interval)
    except CourseError as exc:
        raise click.UsageError(str(exc)) from None
    except KeyboardInterrupt:
        say("stopped")


@cli.group()
def server() -> None:
    """The grading server that keeps `grade` warm between commands.

    `grade check`, `grade run`, `grade audit` and `grade course autograde` run in a server of
    yours, started by the first of them: torch, the fork server, the reference solutions and the
    checks stay loaded, so the next command answers in a fraction of a second instead of ~10 s.
    The server is private to your user (its socket is in a folder only you can open), reads
    edited notebooks and checks again, and exits after 15 minutes without a request
    (TORCHGRADE_SERVER_IDLE_S), after a command you interrupt, or on `grade server stop`. A
    change of the installation or of the CUDA and TORCHGRADE variables starts a fresh one.
    TORCHGRADE_SERVER=off or `grade --no-server COMMAND` runs a command in its own process.
    """


@server.command("status")
@click.pass_obj
def server_status(obj: Context) -> None:
    """List your running grading servers."""
    import time

    from autograder import server as grading_server

    found = grading_server.running()
    current = grading_server.installation_key()
    if not found:
        obj.console.out("no grading server is running")
    for info in found:
        mine = " (this installation)" if info["key"] == current else ""
        obj.console.out(f"server {info['key']}{mine}: pid {info['pid']}, up "
                        f"{time.time() - info['started']:.0f} s, {info['requests']} commands served, "
                        f"exits after {info['idle_s']:g} s idle; python {info['python']}")


@server.command("stop")
@click.pass_obj
def server_stop(obj: Context) -> None:
    """Stop your grading servers (they free their memory; the next command starts one)."""
    from autograder import server as grading_server

    stopped = [info for info in grading_server.running() if grading_server.stop(info["key"])]
    obj.console.out(f"stopped {len(stopped)} grading server{'s' if len(stopped) != 1 else ''}")


@course.command("lms")
@click.argument("lms", type=click.Choice(["canvas", "moodle"]))
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="CSV with columns nbgrader_id,lms_id (and optionally name,sis_login_id,section): "
                   "who each nbgrader student is in the LMS.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The CSV to write. Default: <lms>_grades.csv in the course folder.")
@click.option("--course", "course_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="The nbgrader course folder.")
@click.option("--moodle-identifier", type=click.Choice(["email", "idnumber", "username"]),
              default="email", show_default=True,
              help="What lms_id holds for Moodle (choose the same when importing).")
@click.pass_obj
def course_lms(obj: Context, lms: str, mapping: Path, out_file: Path | None, course_dir: Path,
               moodle_identifier: str) -> None:
    """Write the gradebook's grades as a Canvas gradebook CSV or a Moodle grade-import CSV.

    Scores are those of `nbgrader export` (late penalties applied, 0 where nothing was
    submitted). Students in the gradebook but not in --mapping are left out of the file and
    listed; students in --mapping the gradebook does not know get empty grades and are listed.
    """
    from autograder.integrations.lms import gradebook_grades, read_mapping, write_lms
    from autograder.integrations.nbgrader_course import gradebook, layout

    try:
        course_layout = layout(course_dir)
        people = read_mapping(mapping)
        with gradebook(course_layout) as gb:
            grades = gradebook_grades(gb)
        out = out_file or course_dir / f"{lms}_grades.csv"
        done = write_lms(grades, people, out, lms=lms, moodle_identifier=moodle_identifier)
    except CourseError as exc:
        raise click.UsageError(str(exc)) from None
    echo = obj.console.out
    echo(f"wrote {out}: {done.rows} students, {len(grades.assignments)} assignments")
    if done.unmapped:
        echo(f"NOT in the file, not in {mapping.name}: {', '.join(done.unmapped)}")
    if done.unknown:
        echo(f"in {mapping.name} but not in the gradebook (empty grades): {', '.join(done.unknown)}")


def main() -> None:
    from autograder.isolation.child import exit_now
    from autograder.server import forward

    forwarded = forward(sys.argv[1:])
    if forwarded is not None:
        exit_now(forwarded)
    try:
        cli(prog_name="grade")
    except SystemExit as exc:  # click ends every command this way
        code = exc.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
        exit_now(code if isinstance(code, int) else (0 if code is None else 1))


if __name__ == "__main__":
    main()
