"""What reading a file shows in AutoExplore v1: the part of a file a question can be answered from, bounded.

* **Python** (``.py``, ``.pyi``): an outline from :mod:`ast`, one line per public top-level ``def``/``class`` with its
  line number, a class's public methods on its line (``L4 class Engine: start L5, stop L9``); methods are dropped
  first and then whole lines when the outline does not fit. A file that does not parse shows its head.
* **CSV/TSV**: the header row, read with :mod:`csv` (CR, CRLF or LF line endings, a BOM, quoted fields, ``#``
  comment lines and blank lines before the header).
* **Markdown/reST**: the section headings.
* anything else: the head (:meth:`~environments.auto_explore.sandbox.Sandbox.head`).

A :class:`FileView` holds the text and the ``(kind, name)`` items that text shows, so the task generator and the
teacher decide from exactly what the agent reads (:func:`shows_evidence`).
"""

from __future__ import annotations

import ast
import csv
import io
import os
import re
import warnings
from dataclasses import dataclass

from environments.auto_explore.sandbox import RelPath, Sandbox, SandboxError, defuse_markers, looks_binary

PYTHON_EXTENSIONS = (".py", ".pyi")
TABLE_DELIMITERS = {".csv": ",", ".tsv": "\t"}
DOCUMENT_EXTENSIONS = (".md", ".markdown", ".rst")
#: Bytes read at most to build an outline or a heading list (larger files show what their first bytes give).
SUMMARY_READ_BYTES = 262_144
#: Bytes read at most to find a table's header.
HEADER_READ_BYTES = 65_536
_ATX_RE = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_ADORNMENT_CHARS = set("=-~^\"'`*+#:._")
#: Characters of one name shown at most (longer names are cut with ``...``).
MAX_ITEM_CHARS = 60


@dataclass(frozen=True)
class FileView:
    """What ``cat`` shows of one file.

    Attributes:
        text: The shown text (bounded, section markers defused).
        items: ``(kind, name)`` pairs the text shows in full: ``("class", "Engine")``, ``("function", "run")``,
            ``("column", "price")``, ``("heading", "Quick start")``. A head shows no items.
        form: ``"outline"``, ``"header"``, ``"headings"`` or ``"head"``.

    """

    text: str
    items: frozenset[tuple[str, str]] = frozenset()
    form: str = "head"


def shows_evidence(view: FileView, kind: str, subject: str) -> bool:
    """Return whether ``view`` shows that its file answers a ``kind`` question about ``subject``.

    Columns and headings compare casefolded with collapsed whitespace, as the generator's uniqueness check does.
    """
    if kind in ("function", "class"):
        return (kind, subject) in view.items
    if kind in ("column", "heading"):
        wanted = _key(subject)
        return any(item_kind == kind and _key(name) == wanted for item_kind, name in view.items)
    return False


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def table_header(data: bytes, delimiter: str) -> list[str]:
    """Return the header fields of CSV/TSV bytes: the first row that is not blank and not a ``#`` comment.

    Accepts CR, CRLF and LF line endings, a UTF-8 BOM and quoted fields (:mod:`csv`); fields are stripped and empty
    ones dropped. Bytes that do not parse give ``[]``.
    """
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True):
            fields = [field.strip() for field in row]
            if not any(fields) or fields[0].startswith("#"):
                continue
            return [field for field in fields if field]
    except csv.Error:
        return []
    return []


def python_outline_items(source: bytes) -> list[tuple[int, str, str, list[tuple[int, str]]]] | None:
    """Return ``(line, "class" | "function", name, [(line, method), ...])`` per public top-level definition.

    ``None`` when the source does not parse. Names starting with ``_`` are left out.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    entries = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            entries.append((node.lineno, "function", node.name, []))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            methods = [
                (child.lineno, child.name)
                for child in node.body
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and not child.name.startswith("_")
            ]
            entries.append((node.lineno, "class", node.name, methods))
    return entries


def document_headings(text: str, markdown: bool) -> list[str]:
    """Return the section headings of a Markdown (ATX and setext) or reStructuredText document.

    Markdown fenced code blocks are skipped; RST headings are a text line followed by an adornment line of one
    repeated punctuation character at least as long as the text.
    """
    headings: list[str] = []
    lines = text.splitlines()
    fence = ""
    for index, raw in enumerate(lines):
        line = raw.rstrip()
        stripped = line.strip()
        if markdown:
            if stripped.startswith(("```", "~~~")):
                marker = stripped[:3]
                fence = "" if fence == marker else (fence or marker)
                continue
            if fence:
                continue
            match = _ATX_RE.match(line)
            if match:
                headings.append(match.group(2).strip())
                continue
        if not stripped or line[0] in " \t" or index + 1 >= len(lines):
            continue
        under = lines[index + 1].strip()
        if len(under) >= 3 and len(set(under)) == 1 and under[0] in _ADORNMENT_CHARS and set(stripped) != set(under):
            if markdown and under[0] not in "=-":
                continue
            if not markdown and len(under) < len(stripped):
                continue
            headings.append(stripped)
    return headings


def _short(name: str) -> str:
    return name if len(name) <= MAX_ITEM_CHARS else name[: MAX_ITEM_CHARS - 3] + "..."


def _fit_lines(title: str, lines: list[tuple[str, tuple[str, str] | None]], max_chars: int) -> tuple[str, set]:
    """Join ``title`` and as many ``(line, item)`` as fit in ``max_chars``, with a ``(+N more)`` note."""
    shown, items, used = [title], set(), len(title)
    for index, (line, item) in enumerate(lines):
        rest = len(lines) - index - 1
        note = len(f"\n(+{rest} more)") if rest else 0
        if used + 1 + len(line) + note > max_chars:
            shown.append(f"(+{len(lines) - index} more)")
            break
        shown.append(line)
        used += 1 + len(line)
        if item is not None:
            items.add(item)
    return "\n".join(shown), items


def _outline_view(name: str, source: bytes, max_chars: int) -> FileView | None:
    entries = python_outline_items(source)
    if entries is None:
        return None
    count = source.count(b"\n") + (0 if source.endswith(b"\n") else 1)
    title = f"Python outline of {name} ({count} lines, public names):"
    if not entries:
        return FileView(defuse_markers(title + "\n(no public def or class)"), frozenset(), "outline")

    def line_of(entry: tuple[int, str, str, list[tuple[int, str]]], with_methods: bool) -> str:
        line, kind, entry_name, methods = entry
        text = f"L{line} {'class' if kind == 'class' else 'def'} {_short(entry_name)}"
        if kind == "class" and methods:
            text += (
                ": " + ", ".join(f"{_short(m)} L{n}" for n, m in methods)
                if with_methods
                else f" ({len(methods)} methods)"
            )
        return text

    for with_methods in (True, False):
        lines = [(line_of(entry, with_methods), (entry[1], entry[2])) for entry in entries]
        if with_methods and len(title) + sum(len(line) + 1 for line, _ in lines) > max_chars:
            continue
        text, items = _fit_lines(title, lines, max_chars)
        return FileView(defuse_markers(text), frozenset(items), "outline")
    return None  # pragma: no cover -- the second pass always returns


def _list_view(title: str, view: str, kind: str, entries: list[str], max_chars: int) -> FileView:
    """A ``view`` listing ``entries`` of one ``kind`` (columns, headings) under ``title``, cut to ``max_chars``.

    An entry longer than ``MAX_ITEM_CHARS`` is shown shortened and does not count as evidence.
    """
    lines = [(f"- {_short(e)}", (kind, e) if len(e) <= MAX_ITEM_CHARS else None) for e in entries]
    text, items = _fit_lines(title, lines, max_chars)
    return FileView(defuse_markers(text), frozenset(items), view)


def _header_view(name: str, data: bytes, delimiter: str, max_chars: int) -> FileView:
    fields = table_header(data, delimiter)
    if not fields:
        return FileView(f"Table {name}: no header row found.", frozenset(), "header")
    return _list_view(f"Table header of {name} ({len(fields)} columns):", "header", "column", fields, max_chars)


def _headings_view(name: str, data: bytes, markdown: bool, max_chars: int) -> FileView:
    headings = document_headings(data.decode("utf-8", errors="replace"), markdown)
    if not headings:
        return FileView(f"Document {name}: no section headings.", frozenset(), "headings")
    return _list_view(f"Headings of {name}:", "headings", "heading", headings, max_chars)


def read_file_view(sandbox: Sandbox, parts: RelPath, max_lines: int, max_chars: int) -> FileView:
    """Return what ``cat`` shows of file ``parts``: an outline, header or heading list, else the head.

    Args:
        sandbox: The repository.
        parts: The file.
        max_lines: Lines of a head shown at most.
        max_chars: Characters shown at most.

    """
    name = parts[-1] if parts else ""
    extension = os.path.splitext(name)[1].lower()
    structured = extension in PYTHON_EXTENSIONS or extension in TABLE_DELIMITERS or extension in DOCUMENT_EXTENSIONS
    if structured:
        try:
            limit = HEADER_READ_BYTES if extension in TABLE_DELIMITERS else SUMMARY_READ_BYTES
            data = sandbox.read_bytes(parts, limit=limit)
        except (OSError, SandboxError):
            data = b""
        if data and not looks_binary(data[:8192]):
            shown = name if len(name) <= MAX_ITEM_CHARS else "the file"
            if extension in TABLE_DELIMITERS:
                return _header_view(shown, data, TABLE_DELIMITERS[extension], max_chars)
            if extension in DOCUMENT_EXTENSIONS:
                return _headings_view(shown, data, extension != ".rst", max_chars)
            view = _outline_view(shown, data, max_chars)
            if view is not None:
                return view
    return FileView(sandbox.head(parts, max_lines, max_chars), frozenset(), "head")
