"""Generate AutoExplore tasks offline from any directory tree, deterministically given a seed.

Three kinds of questions, each with exactly one right file in the tree:

* **function / class**: "Which file defines the function `foo`?" -- a top-level ``def``/``class`` (confirmed with
  :mod:`ast`) whose name is defined (at any indentation, in any ``.py`` or ``.pyi`` file) in no other file;
* **column**: "Which data file has a column named `price`?" -- a CSV/TSV header field found in no other table's header;
* **heading**: 'Which document has a section titled "Quick start"?' -- a Markdown/RST heading whose text appears as a
  line of no other document.

Uniqueness is checked against every file the sandbox shows (vendored folders included), so a question never has a
second answer somewhere the agent could look. Targets skip hidden, binary and huge files, vendored folders
(``vendor``, ``third_party``, ``node_modules``, ...) and symlinks, and must be reachable through the entries shown
with ``max_actions`` actions. Tasks are balanced across target depths (round-robin), with few questions per file.

Only the head (``scan_bytes``) of each candidate file is read with a regular expression; :mod:`ast` parses only the
files chosen as answers, so even the ``torch`` tree takes seconds.

The command line is in :mod:`environments.auto_explore.generator`.
"""

from __future__ import annotations

import ast
import os
import random
import re
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from environments.auto_explore.actions import directory_view
from environments.auto_explore.file_view import (
    DOCUMENT_EXTENSIONS,
    PYTHON_EXTENSIONS,
    TABLE_DELIMITERS,
    FileView,
    document_headings,
    read_file_view,
    shows_evidence,
    table_header,
)
from environments.auto_explore.sandbox import RelPath, Sandbox, join_relpath, split_relpath
from environments.auto_explore.tasks import Task

#: Question kinds the generator knows.
KINDS: tuple[str, ...] = ("function", "class", "column", "heading")
#: Folders whose files are never targets (their contents still count when checking that an answer is unique).
VENDORED_DIRS: frozenset[str] = frozenset(
    {"vendor", "vendored", "_vendor", "third_party", "node_modules", "site-packages", "__pycache__", ".git"}
)

QUESTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "function": (
        "Which file defines the function `{}`?",
        "In which file is the function `{}` defined?",
        "Find the file where the function `{}` is defined.",
        "Where is `{}()` defined?",
    ),
    "class": (
        "Which file defines the class `{}`?",
        "In which file is the class `{}` defined?",
        "Find the file that defines class `{}`.",
    ),
    "column": (
        "Which data file has a column named `{}`?",
        "Which CSV/TSV file contains the column `{}`?",
        "Find the table with a `{}` column.",
    ),
    "heading": (
        'Which document has a section titled "{}"?',
        'In which document is the section "{}"?',
        'Find the document with the heading "{}".',
    ),
}

_DEF_RE = re.compile(rb"^([ \t]*)(?:async[ \t]+)?(def|class)[ \t]+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)
_IDENTIFIER_SKIP = frozenset({"main", "setup", "setUp", "tearDown", "run"})
_COLUMN_RE = re.compile(r"^[A-Za-z][A-Za-z0-9 _.()%/-]{1,39}$")
_HEADING_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ,.:()&/'!?+_-]{2,59}$")


def normalize_text(text: str) -> str:
    """Casefold ``text`` and collapse its whitespace (how names, columns and headings are compared)."""
    return " ".join(text.split()).casefold()


def document_line_key(line: str) -> str:
    """Normalise a document line for the uniqueness check of headings: no ``#`` marks, casefolded."""
    return normalize_text(line.strip().strip("#").strip())


def python_definitions(data: bytes) -> list[tuple[str, str, bool]]:
    """Return ``(name, "def" | "class", top_level)`` for every ``def``/``class`` line in Python source bytes."""
    return [(m.group(3).decode("ascii"), m.group(2).decode("ascii"), not m.group(1)) for m in _DEF_RE.finditer(data)]


@dataclass(frozen=True)
class _Candidate:
    depth: int
    kind: str
    subject: str
    target: str


class _TreeScan:
    """One pass over a tree: what is defined where, and which files may be targets."""

    def __init__(
        self,
        sandbox: Sandbox,
        kinds: Sequence[str],
        max_actions: int,
        min_depth: int,
        max_depth: int | None,
        max_file_bytes: int,
        scan_bytes: int,
    ) -> None:
        self.sandbox = sandbox
        self.kinds = set(kinds)
        self.max_actions = max_actions
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.max_file_bytes = max_file_bytes
        self.scan_bytes = max(scan_bytes, max_file_bytes)
        self.definition_files: dict[str, set[str]] = defaultdict(set)
        self.top_level: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.column_files: dict[str, set[str]] = defaultdict(set)
        self.column_candidates: list[tuple[str, str]] = []
        self.document_lines: dict[str, set[str]] = {}
        self.heading_candidates: list[tuple[str, str]] = []
        self.files_scanned = 0

    def run(self) -> None:
        reachable: dict[RelPath, bool] = {(): True}
        for here, listing in self.sandbox.walk():
            view = directory_view(listing, self.max_actions, at_root=not here)
            here_reachable = reachable.pop(here, False)
            for name in listing.dirs:
                reachable[here + (name,)] = here_reachable and name in view.dirs
            vendored = any(part in VENDORED_DIRS for part in here)
            depth_ok = self.min_depth <= len(here) and (self.max_depth is None or len(here) <= self.max_depth)
            shown = set(view.files)
            for name in listing.files:
                candidate = here_reachable and not vendored and depth_ok and name in shown
                self._scan_file(here + (name,), candidate)

    def _scan_file(self, parts: RelPath, candidate: bool) -> None:
        extension = os.path.splitext(parts[-1])[1].lower()
        wants_python = extension in PYTHON_EXTENSIONS and self.kinds & {"function", "class"}
        wants_table = extension in TABLE_DELIMITERS and "column" in self.kinds
        wants_document = extension in DOCUMENT_EXTENSIONS and "heading" in self.kinds
        if not (wants_python or wants_table or wants_document):
            return
        try:
            size = self.sandbox.file_size(parts)
            if size > self.max_file_bytes:
                candidate = False
            limit = min(size, 65536 if wants_table else self.scan_bytes)
            data = self.sandbox.read_bytes(parts, limit=limit)
        except OSError:
            return
        if b"\x00" in data[:8192]:
            return  # binary
        self.files_scanned += 1
        rel = join_relpath(parts)
        if wants_python:
            candidate = candidate and extension == ".py"
            for name, kind, top in python_definitions(data):
                self.definition_files[name].add(rel)
                if candidate and top:
                    self.top_level[name].add((rel, "class" if kind == "class" else "function"))
        elif wants_table:
            columns = table_header(data, TABLE_DELIMITERS[extension])
            for column in columns:
                self.column_files[normalize_text(column)].add(rel)
                if candidate and _COLUMN_RE.match(column) and not _is_number(column):
                    self.column_candidates.append((rel, column))
        else:
            text = data.decode("utf-8", errors="replace")
            self.document_lines[rel] = {document_line_key(line) for line in text.splitlines()}
            if candidate:
                markdown = extension != ".rst"
                for heading in document_headings(text, markdown):
                    if _HEADING_RE.match(heading) and any(ch.isalpha() for ch in heading):
                        self.heading_candidates.append((rel, heading))

    def candidates(self) -> list[_Candidate]:
        found: set[_Candidate] = set()
        for name, places in self.top_level.items():
            files = self.definition_files[name]
            if len(files) != 1 or len(places) != 1 or not _good_identifier(name):
                continue
            ((rel, kind),) = places
            if kind in self.kinds:
                found.add(_Candidate(rel.count("/"), kind, name, rel))
        if "column" in self.kinds:
            seen: set[tuple[str, str]] = set()
            for rel, column in self.column_candidates:
                key = normalize_text(column)
                if self.column_files[key] == {rel} and (rel, key) not in seen:
                    seen.add((rel, key))
                    found.add(_Candidate(rel.count("/"), "column", column, rel))
        if "heading" in self.kinds:
            counts: Counter[str] = Counter()
            for lines in self.document_lines.values():
                counts.update(lines)
            used: set[tuple[str, str]] = set()
            for rel, heading in self.heading_candidates:
                key = normalize_text(heading)
                if counts[key] == 1 and key in self.document_lines[rel] and (rel, key) not in used:
                    used.add((rel, key))
                    found.add(_Candidate(rel.count("/"), "heading", heading, rel))
        return sorted(found, key=lambda c: (c.depth, c.target, c.kind, c.subject))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _good_identifier(name: str) -> bool:
    return (
        len(name) >= 4
        and not name.startswith("_")
        and not name.lower().startswith("test")
        and name not in _IDENTIFIER_SKIP
        and any(ch.isalpha() for ch in name)
    )


def _top_level_names(sandbox: Sandbox, rel: str, max_bytes: int) -> dict[str, str]:
    """Parse one Python file with :mod:`ast`; return its top-level ``def``/``class`` names and kinds."""
    try:
        source = sandbox.read_bytes(tuple(rel.split("/")), limit=max_bytes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = "function" if names.get(node.name, "function") == "function" else "?"
        elif isinstance(node, ast.ClassDef):
            names[node.name] = "class" if names.get(node.name, "class") == "class" else "?"
    return names


def _order_within_depth(candidates: list[_Candidate], rng: random.Random, max_per_file: int) -> list[_Candidate]:
    """Interleave files (one question per file per round, at most ``max_per_file``) and kinds."""
    by_file: dict[str, list[_Candidate]] = defaultdict(list)
    for candidate in candidates:
        by_file[candidate.target].append(candidate)
    files = sorted(by_file)
    rng.shuffle(files)
    for name in files:
        rng.shuffle(by_file[name])
    by_kind: dict[str, list[_Candidate]] = defaultdict(list)
    for round_index in range(max_per_file):
        for name in files:
            if round_index < len(by_file[name]):
                candidate = by_file[name][round_index]
                by_kind[candidate.kind].append(candidate)
    return _round_robin([by_kind[kind] for kind in sorted(by_kind)])


def _round_robin(queues: Sequence[Sequence[_Candidate]]) -> list[_Candidate]:
    merged: list[_Candidate] = []
    for index in range(max((len(q) for q in queues), default=0)):
        merged.extend(queue[index] for queue in queues if index < len(queue))
    return merged


def make_question(kind: str, subject: str, seed: int | str = 0) -> str:
    """Phrase a question of ``kind`` about ``subject`` with one of the templates, chosen deterministically by ``seed``.

    Raises:
        ValueError: for an unknown kind.

    """
    if kind not in QUESTION_TEMPLATES:
        raise ValueError(f"Unknown question kind {kind!r}; known kinds: {', '.join(QUESTION_TEMPLATES)}.")
    templates = QUESTION_TEMPLATES[kind]
    return random.Random(f"{seed}:{kind}:{subject}").choice(templates).format(subject)


def generate_tasks(
    root: str | os.PathLike[str],
    *,
    seed: int = 0,
    max_tasks: int = 200,
    kinds: Sequence[str] = KINDS,
    min_depth: int = 0,
    max_depth: int | None = 3,
    max_actions: int = 64,
    max_per_file: int = 2,
    max_file_bytes: int = 200_000,
    scan_bytes: int = 2_000_000,
    repo_name: str | None = None,
    evidence_chars: int | None = None,
    dropped: Counter[str] | None = None,
) -> list[Task]:
    """Generate up to ``max_tasks`` tasks from the directory tree at ``root``; the same seed gives the same tasks.

    Args:
        root: The repository (any directory).
        seed: Seed of the choice of questions and phrasings.
        max_tasks: Tasks at most.
        kinds: Question kinds to ask (subset of :data:`KINDS`).
        min_depth: Smallest target depth (number of ``cd`` from the root).
        max_depth: Largest target depth (``None``: no limit). Curriculum stages go up to 3.
        max_actions: Action-space size the tasks will be played with; every step of every answer's path is among the
            entries shown with it.
        max_per_file: Questions at most about the same file.
        max_file_bytes: Larger files are never targets.
        scan_bytes: Bytes read at most from a Python file or document when checking that an answer is unique.
        repo_name: Prefix of task ids (default: the root's directory name).
        evidence_chars: When given, only questions whose answer ``cat`` shows within this many characters (the
            environment's ``cat_chars``; see :func:`~environments.auto_explore.file_view.read_file_view`): an
            outline with the ``def``/``class``, a header with the column, a heading list with the heading.
            ``None``: no such check (AutoExplore v0, whose ``cat`` shows the head).
        dropped: A counter that receives, per reason, the candidate questions left out after the scan.

    Returns:
        Tasks balanced across depths (round-robin over depths, shallowest first), kinds and files.

    Raises:
        FileNotFoundError: if ``root`` does not exist; ValueError: for an unknown kind or bad limits.

    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"Unknown question kind(s) {sorted(unknown)}; known kinds: {', '.join(KINDS)}.")
    if max_tasks < 0 or max_per_file < 1 or max_actions < 3:
        raise ValueError("max_tasks must be >= 0, max_per_file >= 1 and max_actions >= 3.")
    sandbox = Sandbox(root)
    name = repo_name or os.path.basename(sandbox.root) or "repo"
    scan = _TreeScan(sandbox, kinds, max_actions, min_depth, max_depth, max_file_bytes, scan_bytes)
    scan.run()
    rng = random.Random(f"{seed}:{name}")
    by_depth: dict[int, list[_Candidate]] = defaultdict(list)
    for candidate in scan.candidates():
        by_depth[candidate.depth].append(candidate)
    queues = [_order_within_depth(by_depth[depth], rng, max_per_file) for depth in sorted(by_depth)]
    parsed: dict[str, dict[str, str]] = {}
    views: dict[str, FileView] = {}
    dropped = Counter() if dropped is None else dropped
    tasks: list[Task] = []
    for candidate in _round_robin(queues):
        if len(tasks) >= max_tasks:
            break
        if candidate.kind in ("function", "class"):
            if candidate.target not in parsed:
                parsed[candidate.target] = _top_level_names(sandbox, candidate.target, max_file_bytes)
            if parsed[candidate.target].get(candidate.subject) != candidate.kind:
                dropped["not a top-level definition of that kind (ast)"] += 1
                continue
        if evidence_chars is not None:
            if candidate.target not in views:
                views[candidate.target] = read_file_view(sandbox, split_relpath(candidate.target), 1, evidence_chars)
            if not shows_evidence(views[candidate.target], candidate.kind, candidate.subject):
                dropped[f"{candidate.kind} not shown when the file is read ({evidence_chars} characters)"] += 1
                continue
        task_id = f"{name}:{candidate.kind}:{candidate.subject}"
        tasks.append(
            Task(
                task_id=task_id,
                root=sandbox.root,
                question=make_question(candidate.kind, candidate.subject, seed),
                targets=[candidate.target],
                kind=candidate.kind,
                subject=candidate.subject,
            )
        )
    return tasks


def generate_from_roots(roots: Iterable[str | os.PathLike[str]], *, seed: int = 0, **kwargs: object) -> list[Task]:
    """Generate tasks from several roots (ids are made unique when two roots share a directory name).

    Args:
        roots: Repository directories.
        seed: Seed shared by every root.
        **kwargs: Passed to :func:`generate_tasks` (``max_tasks`` is per root).

    """
    tasks: list[Task] = []
    names: Counter[str] = Counter()
    for root in roots:
        base = os.path.basename(os.path.realpath(os.fspath(root))) or "repo"
        names[base] += 1
        repo_name = base if names[base] == 1 else f"{base}-{names[base]}"
        tasks.extend(generate_tasks(root, seed=seed, repo_name=repo_name, **kwargs))  # type: ignore[arg-type]
    return tasks


def depth_histogram(tasks: Iterable[Task]) -> dict[int, int]:
    """Return the number of tasks per target depth, sorted by depth."""
    counts = Counter(task.depth for task in tasks)
    return dict(sorted(counts.items()))
