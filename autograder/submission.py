"""Read a submission (``.ipynb`` or ``.py``) and pull out the code to grade, without running it.

The rules, in the order they apply to each exercise of a notebook:

1. Every code cell whose nbgrader ``grade_id`` is the exercise's runs, in notebook order (a
   duplicated cell behaves as it would in the kernel: the later definition wins).
2. If no code cell has that id but one is a markdown or raw cell, that cell runs as code, with a
   notice saying to turn it back into code. nbgrader's autograder restores the cell type of
   every cell it knows too, so both grade the student's code; scoring it zero would punish
   correct code for a keystroke.
3. If no cell has the id at all (deleted, or the code was pasted into a new cell), code cells that
   define the exercise's functions or classes at top level are used instead, with a notice.
4. Otherwise the exercise scores zero: "no cell with grade_id ...".

The setup cell (imports) always comes from the reference notebook, not from the submission.
IPython magics and shell escapes (lines starting with ``%`` or ``!``) are commented out.
A ``.py`` submission is one cell that serves every exercise.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from autograder.course import SETUP_ID, Assignment, nbgrader_meta, top_level_names

MAX_SUBMISSION_BYTES = 100 << 20
_MAGIC = re.compile(r"^(\s*)([%!].*)$", re.MULTILINE)


class SubmissionError(Exception):
    """The file cannot be graded at all (unreadable, not a notebook, too large)."""


@dataclass
class Extraction:
    """The cells to run in the sandbox and what was wrong with each exercise."""

    cells: list[dict[str, str]] = field(default_factory=list)
    cell_exercises: dict[str, list[str]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    notices: dict[str, str] = field(default_factory=dict)
    sha256: str = ""
    names: dict[str, frozenset[str]] = field(default_factory=dict)

    def add(self, cell_id: str, source: str, exercises: list[str]) -> None:
        source = _MAGIC.sub(r"\1# \2", source)
        self.cells.append({"id": cell_id, "source": source})
        self.cell_exercises[cell_id] = exercises

    def name_attributes(self, assignment: Assignment) -> None:
        """Fill :attr:`names`: for each exercise, the attributes its code names, found without
        running it (see :func:`reachable_attributes`)."""
        sources = [c["source"] for c in self.cells if c["id"] != SETUP_ID]
        for exercise in assignment.exercises:
            found = reachable_attributes(sources, exercise.defines)
            if found is None:  # its definitions are not at top level: all of its cells' code
                own = [c["source"] for c in self.cells
                       if exercise.name in self.cell_exercises.get(c["id"], [])]
                found = frozenset().union(*(attribute_names(s) for s in own))
            self.names[exercise.name] = found


def attribute_names(source: str) -> frozenset[str]:
    """Every attribute the code names (``torch.softmax`` gives ``softmax``), found without running it."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return frozenset()
    return frozenset(node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute))


def reachable_attributes(sources: list[str], roots: tuple[str, ...]) -> frozenset[str] | None:
    """The attributes named by the top-level definitions of ``roots`` and by every top-level
    definition, assignment or import they use by name, in any of ``sources``; None when no root
    is defined at top level.

    Checked on the grading side alongside what the sandbox reports, so a built-in reached in a
    way the in-sandbox recorder cannot see (dispatch switched off, ``torch.ops.aten``) still shows,
    also through a helper or an alias (``sm = torch.ops.aten._softmax``). Only what the exercise's
    code can reach counts: another function in the same cell, or a student's own test beside the
    definition (``torch.tanh(z).sum().backward()`` to compare with autograd), is not the exercise.
    A function's parameters and local variables are its own, never a top-level name.
    """
    symbols: dict[str, list[ast.stmt]] = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for statement in tree.body:
            for name in _bound([statement]):
                symbols.setdefault(name, []).append(statement)
    todo = [name for name in roots if name in symbols]
    if not todo:
        return None
    seen: set[str] = set()
    found: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for statement in symbols[name]:
            attributes, uses = _scan(statement)
            found |= attributes
            todo.extend(use for use in uses if use in symbols and use not in seen)
    return frozenset(found)


def _bound(statements: list[ast.AST]) -> set[str]:
    """The names ``statements`` bind in their own scope: definitions, assignment targets,
    imports, loop and ``with`` targets; not what nested functions bind for themselves."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return
        if isinstance(node, ast.Lambda):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for statement in statements:
        visit(statement)
    return names


def _scan(statement: ast.stmt) -> tuple[set[str], set[str]]:
    """The attributes ``statement`` names, and the free names it uses (read, not local to one
    of its functions)."""
    attributes: set[str] = set()
    uses: set[str] = set()

    def visit(node: ast.AST, local: frozenset[str]) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = node.args
            for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
                visit(default, local)
            for decorator in getattr(node, "decorator_list", []):
                visit(decorator, local)
            body: list[ast.AST] = list(node.body) if isinstance(node.body, list) else [node.body]
            params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                                       *(a for a in (args.vararg, args.kwarg) if a is not None)]}
            declared = {name for n in ast.walk(node) if isinstance(n, (ast.Global, ast.Nonlocal))
                        for name in n.names}
            inner = local | ((params | _bound(body)) - declared)
            for statement in body:
                visit(statement, frozenset(inner))
            return
        if isinstance(node, ast.Attribute):
            attributes.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in local:
            uses.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child, local)

    visit(statement, frozenset())
    return attributes, uses


def read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SubmissionError(f"cannot read {path.name}: {exc.strerror}") from None
    if size > MAX_SUBMISSION_BYTES:
        raise SubmissionError(
            f"{path.name} is {size / 2**20:.0f} MiB, over the {MAX_SUBMISSION_BYTES >> 20} MiB "
            "limit. Clear the outputs (Edit > Clear Outputs of All Cells), save and resubmit."
        )
    if size == 0:
        raise SubmissionError(f"{path.name} is empty (0 bytes). Was it saved before submitting?")
    return path.read_bytes()


def _decode_text(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(
            f"{path.name} is not UTF-8 text (bad byte at offset {exc.start}). "
            "Re-save it from Jupyter."
        ) from None


def _read_notebook(path: Path, raw: bytes) -> Any:
    text = _decode_text(path, raw)
    try:
        version = json.loads(text).get("nbformat")
    except json.JSONDecodeError as exc:
        raise SubmissionError(
            f"{path.name} is not a valid notebook: broken JSON at line {exc.lineno}, column "
            f"{exc.colno} ({exc.msg}). Was it truncated? Open it in Jupyter and re-save."
        ) from None
    except AttributeError:
        raise SubmissionError(f"{path.name} is JSON but not a notebook") from None
    try:
        return nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises many types for bad documents
        raise SubmissionError(
            f"{path.name} could not be read as a notebook (nbformat {version}): {exc}"
        ) from None


def extract(path: Path, assignment: Assignment) -> Extraction:
    """Return the code cells of ``path`` to run for ``assignment``."""
    raw = read_bytes(path)
    extraction = Extraction(sha256=hashlib.sha256(raw).hexdigest())
    extraction.add(SETUP_ID, assignment.setup_source, [])
    if path.suffix == ".py":
        _decode_text(path, raw)
        extraction.add("submission", raw.decode("utf-8"), [e.name for e in assignment.exercises])
        extraction.name_attributes(assignment)
        return extraction
    if path.suffix != ".ipynb":
        raise SubmissionError(f"{path.name}: expected a .ipynb or .py file")
    nb = _read_notebook(path, raw)
    cells = [c for c in nb.cells if isinstance(c, dict)]
    known = [e.name for e in assignment.exercises]
    for exercise in assignment.exercises:
        by_id = [c for c in cells if nbgrader_meta(c).get("grade_id") == exercise.name]
        code = [c for c in by_id if c.get("cell_type") == "code"]
        if len(code) > 1:
            extraction.notices[exercise.name] = (
                f"{len(code)} cells have grade_id '{exercise.name}'; all ran in notebook order, "
                "so the last definition counts"
            )
        if not code and by_id:
            code = by_id[:1]
            extraction.notices[exercise.name] = (
                f"the cell '{exercise.name}' is a {by_id[0].get('cell_type')} cell, so it does not "
                "run in your kernel; it was graded as code. Change it back to a code cell "
                "(Esc, then Y in Jupyter)."
            )
        if not code and exercise.defines:
            code = [
                c for c in cells
                if c.get("cell_type") == "code"
                and set(exercise.defines) & set(top_level_names(str(c.get("source", ""))))
            ]
            if code:
                extraction.notices[exercise.name] = (
                    f"no cell with grade_id '{exercise.name}'; used the cell that defines "
                    f"{', '.join(exercise.defines)} instead"
                )
        if not code:
            extraction.problems[exercise.name] = (
                f"{path.name}: no cell with grade_id '{exercise.name}'. Was it deleted? "
                f"Expected one of: {', '.join(known)}"
            )
            continue
        for i, cell in enumerate(code):
            cell_id = exercise.name if i == 0 else f"{exercise.name}#{i + 1}"
            extraction.add(cell_id, str(cell.get("source", "")), [exercise.name])
    extraction.name_attributes(assignment)
    return extraction
