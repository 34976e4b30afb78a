"""Similar code between submissions, per exercise: a reason for an instructor to look, never proof.

Only the graded cells are compared (each exercise's own code), never the released starter code
or the prose, which everyone shares. The method is MOSS's (Schleimer, Wilkerson and Aiken,
"Winnowing", SIGMOD 2003), on Python's own tokenizer:

1. **Normalise.** Comments and blank lines go; every identifier becomes ``V`` except keywords,
   builtins and attribute names (``torch.exp``, ``x.sum``: the API a solution uses, which a copier
   does not rename); strings become ``S`` and numbers ``N``. Indentation and statement ends stay
   as tokens, so structure counts but formatting does not.
2. **Fingerprint.** Hash every run of :data:`K` tokens and keep, from each window of :data:`W`
   hashes, the smallest (winnowing): every run of ``K + W - 1`` tokens that two submissions share
   leaves at least one fingerprint in both, wherever it sits, so reordered functions still match.
   The starter code's fingerprints are removed, and so are those that many submissions share
   (idioms everyone writes, the textbook solution many arrive at): more than
   :data:`COMMON_SHARE` of a small class, more than :data:`COMMON_MAX` in a large one (MOSS's
   ``-m``, whose default is 10).
3. **Compare.** Two submissions' similarity on an exercise is the share of the smaller one's
   fingerprints that the other has too. Pairs come from an inverted index (fingerprint ->
   submissions), so a class of a thousand costs seconds, not a million comparisons.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import io
import keyword
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass, field

K = 12
"""Tokens per hashed run. Shorter runs match idioms that independent solutions share."""
W = 8
"""Hashes per winnowing window: a shared run of K + W - 1 = 19 tokens is always detected."""
COMMON_SHARE = 0.5
COMMON_MAX = 10
"""A fingerprint held by more than min(COMMON_SHARE of the class, COMMON_MAX) submissions (and
at least 3) is an idiom: ignored."""
MIN_FINGERPRINTS = 4
"""An exercise whose code leaves fewer fingerprints (a one-liner) is not compared."""

_KEEP = frozenset(keyword.kwlist) | frozenset(dir(builtins))
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
_STRUCTURE = {tokenize.NEWLINE: ";", tokenize.INDENT: "{", tokenize.DEDENT: "}"}


@dataclass(frozen=True)
class Token:
    text: str  # normalised
    line: int  # in the source it came from, 1-based


@dataclass
class Code:
    """One submission's code for one exercise, with its fingerprints (hash -> token positions)."""

    student: str
    exercise: str
    source: str
    tokens: list[Token]
    fingerprints: dict[int, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """Two submissions' similar code on one exercise."""

    exercise: str
    a: str
    b: str
    similarity: float  # share of the smaller fingerprint set found in the other
    shared: int
    code_a: Code
    code_b: Code
    fingerprints: tuple[int, ...]  # those they share

    def lines(self) -> tuple[frozenset[int], frozenset[int]]:
        """The lines of a's and of b's code inside a shared run (for the page)."""
        return _lines(self.code_a, self.fingerprints), _lines(self.code_b, self.fingerprints)


def normalise(source: str) -> list[Token]:
    """The tokens of ``source``, identifiers, strings and numbers made anonymous."""
    out: list[Token] = []
    previous = ""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in _SKIP:
                continue
            if tok.type in _STRUCTURE:
                text = _STRUCTURE[tok.type]
            elif tok.type == tokenize.NAME:
                text = tok.string if tok.string in _KEEP or previous == "." else "V"
            elif tok.type == tokenize.STRING or tok.type == getattr(tokenize, "FSTRING_START", -1):
                text = "S"
            elif tok.type in (getattr(tokenize, "FSTRING_MIDDLE", -1), getattr(tokenize, "FSTRING_END", -1)):
                continue
            elif tok.type == tokenize.NUMBER:
                text = "N"
            else:
                text = tok.string
            previous = tok.string
            out.append(Token(text, tok.start[0]))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        # code that does not tokenise (a student's half-edited cell): words and symbols
        out = []
        for number, line in enumerate(source.splitlines(), 1):
            line = line.split("#", 1)[0]
            out.extend(Token("V" if w.isidentifier() and w not in _KEEP else w, number)
                       for w in re.findall(r"\w+|\S", line))
    return out


def _hash(texts: list[str]) -> int:
    digest = hashlib.blake2b("\x1f".join(texts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def fingerprints(tokens: list[Token], *, k: int = K, w: int = W) -> dict[int, list[int]]:
    """Winnowed hashes of the k-token runs of ``tokens``: hash -> positions of the runs."""
    texts = [t.text for t in tokens]
    hashes = [_hash(texts[i:i + k]) for i in range(len(texts) - k + 1)]
    chosen: dict[int, list[int]] = {}
    last = -1
    for start in range(max(len(hashes) - w + 1, 1 if hashes else 0)):
        window = hashes[start:start + w]
        # the rightmost minimum, so a window that slides keeps its pick (Schleimer et al.)
        offset = min(range(len(window)), key=lambda i: (window[i], -i))
        position = start + offset
        if position != last:
            chosen.setdefault(hashes[position], []).append(position)
            last = position
    return chosen


def exercise_code(cells: list[dict[str, str]], cell_exercises: dict[str, list[str]], exercise: str,
                  defines: tuple[str, ...]) -> str:
    """The code of ``exercise`` among a submission's cells: its own cells, or, in a cell shared
    by several exercises (a .py file), only the top-level statements that define its names."""
    parts = []
    for cell in cells:
        owners = cell_exercises.get(cell["id"], [])
        if exercise not in owners:
            continue
        if len(owners) == 1:
            parts.append(cell["source"])
            continue
        try:
            tree = ast.parse(cell["source"])
        except SyntaxError:
            parts.append(cell["source"])
            continue
        for node in tree.body:
            names = {getattr(node, "name", "")} | {
                t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)}
            if names & set(defines):
                parts.append(ast.get_source_segment(cell["source"], node) or "")
    return "\n\n".join(parts)


def compare(codes: Iterable[Code], *, starter: dict[str, str] | None = None,
            common_share: float = COMMON_SHARE, common_max: int = COMMON_MAX) -> list[Match]:
    """Every pair of submissions that shares fingerprints on an exercise, most similar first."""
    by_exercise: dict[str, list[Code]] = {}
    for code in codes:
        code.fingerprints = fingerprints(code.tokens)
        by_exercise.setdefault(code.exercise, []).append(code)
    matches = []
    for exercise, group in by_exercise.items():
        shared_by_all = set(fingerprints(normalise((starter or {}).get(exercise, ""))))
        index: dict[int, list[int]] = {}
        for i, code in enumerate(group):
            for fp in code.fingerprints:
                if fp not in shared_by_all:
                    index.setdefault(fp, []).append(i)
        limit = max(3, min(int(common_share * len(group)), common_max))
        kept = {fp: holders for fp, holders in index.items() if len(holders) <= limit}
        sizes = [sum(fp in kept for fp in c.fingerprints) for c in group]
        pairs: dict[tuple[int, int], list[int]] = {}
        for fp, holders in kept.items():
            for x in range(len(holders)):
                for y in range(x + 1, len(holders)):
                    pairs.setdefault((holders[x], holders[y]), []).append(fp)
        for (i, j), fps in pairs.items():
            smaller = min(sizes[i], sizes[j])
            if smaller < MIN_FINGERPRINTS:
                continue
            a, b = group[i], group[j]
            matches.append(Match(exercise=exercise, a=a.student, b=b.student,
                                 similarity=len(fps) / smaller, shared=len(fps), code_a=a, code_b=b,
                                 fingerprints=tuple(fps)))
    matches.sort(key=lambda m: (-m.similarity, -m.shared, m.exercise, m.a, m.b))
    return matches


def _lines(code: Code, fps: Iterable[int]) -> frozenset[int]:
    lines: set[int] = set()
    for fp in fps:
        for position in code.fingerprints.get(fp, []):
            lines.update(t.line for t in code.tokens[position:position + K])
    return frozenset(lines)
