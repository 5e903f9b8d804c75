"""A read-only view of one directory tree: list directories and read the head of files, never leaving the root.

Everything the agent (or the task generator) sees of a repository goes through :class:`Sandbox`:

* only regular files and directories are visible; **all symbolic links are hidden** (inside or outside the root),
  and so are FIFOs, sockets and devices, hidden names (``.git``, ``.env``; configurable), ``__pycache__`` and names
  that are not plain printable ASCII (a name with a newline could otherwise forge lines of the observation);
* before every ``scandir`` or ``open`` the path is rebuilt from checked components, its real path must equal it
  (no symlink anywhere on the way) and lie inside the root; files are opened with ``O_NOFOLLOW | O_NONBLOCK`` (a
  FIFO swapped in after the check cannot block) and re-checked with ``fstat`` before a single byte is read;
* at most ``max_read_bytes`` are read from any file, so a huge (or sparse multi-GB) file costs the same as a small one;
* nothing is ever written or executed.

Paths inside the sandbox are tuples of names (``("src", "pkg")``); :func:`split_relpath` turns a relative path
string into one and rejects absolute paths and ``..``.
"""

from __future__ import annotations

import errno
import os
import stat
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: Directory names never shown (besides hidden names when ``show_hidden`` is off).
DEFAULT_IGNORED_NAMES: frozenset[str] = frozenset({"__pycache__"})
#: Characters a visible name may contain: printable ASCII without tabs and line breaks.
NAME_CHARSET: frozenset[str] = frozenset(string.ascii_letters + string.digits + string.punctuation + " ")
#: Longest visible name (longer names are hidden to keep listings and action texts short).
MAX_NAME_LENGTH = 100
#: Bytes read at most from a file to show its head.
DEFAULT_MAX_READ_BYTES = 8192

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = _OPEN_FLAGS | getattr(os, "O_DIRECTORY", 0)

#: Markers of the prompt format; file contents must not forge them (see :func:`defuse_markers`).
_PROMPT_MARKERS = ("# Analyze:", "# Actions:", "# Action:")

RelPath = tuple[str, ...]


class SandboxError(OSError):
    """A path that the sandbox refuses: outside the root, through a symlink, not a regular file or directory."""


@dataclass(frozen=True)
class Listing:
    """The visible entries of one directory, each sorted by name.

    Attributes:
        dirs: Names of visible subdirectories.
        files: Names of visible regular files.
        error: Why the directory could not be listed (``""`` when it could).

    """

    dirs: tuple[str, ...]
    files: tuple[str, ...]
    error: str = ""


def is_visible_name(name: str, show_hidden: bool = False, ignored: Iterable[str] = DEFAULT_IGNORED_NAMES) -> bool:
    """Return whether a directory entry named ``name`` may be shown at all (before looking at its type).

    Args:
        name: The entry's name.
        show_hidden: Whether names starting with ``.`` are shown.
        ignored: Names never shown.

    """
    if not name or name in (".", "..") or len(name) > MAX_NAME_LENGTH or name in ignored:
        return False
    if name[0] == "." and not show_hidden:
        return False
    if name != name.strip():
        return False
    return all(ch in NAME_CHARSET for ch in name) and "/" not in name


def split_relpath(path: str | os.PathLike[str]) -> RelPath:
    """Split a relative path inside a root into its names, refusing anything that could point outside it.

    ``"src/pkg/util.py"`` -> ``("src", "pkg", "util.py")``; ``""`` and ``"."`` give the root ``()``.

    Raises:
        ValueError: for an absolute path, a ``..`` or ``.`` component, empty components, backslashes or NUL bytes.

    """
    text = os.fspath(path)
    if text in ("", "."):
        return ()
    if "\x00" in text or "\\" in text:
        raise ValueError(f"Path {text!r} contains a NUL byte or a backslash.")
    if text.startswith("/") or os.path.isabs(text):
        raise ValueError(f"Path {text!r} is absolute; paths must be relative to the repository root.")
    parts = tuple(text.split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(f"Path {text!r} has a {part or 'empty'!r} component; use a plain relative path.")
    return parts


def join_relpath(parts: Iterable[str]) -> str:
    """Join names into a relative path string (``()`` -> ``""``)."""
    return "/".join(parts)


def display_dir(parts: Iterable[str]) -> str:
    """Return the directory as the agent sees it: ``()`` -> ``/``, ``("src", "pkg")`` -> ``/src/pkg``."""
    return "/" + "/".join(parts)


def defuse_markers(text: str) -> str:
    """Break the prompt's section markers inside file contents so a file cannot forge a prompt section."""
    if "# A" not in text:
        return text
    for marker in _PROMPT_MARKERS:
        text = text.replace(marker, "#." + marker[1:])
    return text


def looks_binary(data: bytes) -> bool:
    """Return whether ``data`` (the head of a file) looks like binary rather than text.

    A NUL byte, or more than 10% of bytes that are neither printable ASCII, common whitespace nor part of valid
    UTF-8, marks a file as binary.
    """
    if not data:
        return False
    if b"\x00" in data:
        return True
    text = data.decode("utf-8", errors="replace")
    bad = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\n\r\t\f\v\b\x1b"))
    return bad > max(3, len(text) // 10)


class Sandbox:
    """Read-only access to one directory tree.

    Args:
        root: The directory; it must exist. Its real path (symlinks resolved once, here) is the boundary.
        max_read_bytes: Bytes read at most from a file by :meth:`head`.
        show_hidden: Whether names starting with ``.`` are visible.
        ignored_names: Names never visible (default: ``__pycache__``).

    Raises:
        FileNotFoundError: if ``root`` does not exist; NotADirectoryError: if it is not a directory.

    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        max_read_bytes: int = DEFAULT_MAX_READ_BYTES,
        show_hidden: bool = False,
        ignored_names: Iterable[str] = DEFAULT_IGNORED_NAMES,
    ) -> None:
        given = os.fspath(root)
        real = os.path.realpath(given)
        if not os.path.exists(real):
            raise FileNotFoundError(f"Repository root {given!r} does not exist.")
        if not os.path.isdir(real):
            raise NotADirectoryError(f"Repository root {given!r} is not a directory.")
        self.root = real
        self.max_read_bytes = int(max_read_bytes)
        self.show_hidden = bool(show_hidden)
        self.ignored_names = frozenset(ignored_names)
        self._listings: dict[RelPath, Listing] = {}
        self._heads: dict[tuple[RelPath, int, int], str] = {}

    @property
    def root_path(self) -> Path:
        """The root as a :class:`~pathlib.Path`."""
        return Path(self.root)

    # -- path checks ------------------------------------------------------------------------------------------------
    def _absolute(self, parts: RelPath) -> str:
        """Return the absolute path of ``parts`` after checking every name and that no symlink is on the way.

        Raises:
            SandboxError: if a name is not visible or the real path differs or lies outside the root.

        """
        for name in parts:
            if not is_visible_name(name, self.show_hidden, self.ignored_names):
                raise SandboxError(errno.EACCES, f"Name {name!r} is not visible in the sandbox")
        path = os.path.join(self.root, *parts) if parts else self.root
        real = os.path.realpath(path)
        if real != path or os.path.commonpath([self.root, real]) != self.root:
            raise SandboxError(errno.EACCES, f"Path {join_relpath(parts)!r} leaves the sandbox or passes a link")
        return path

    def _entry_kind(self, parts: RelPath) -> str:
        """Return ``"dir"``, ``"file"`` or ``""`` (missing, symlink, special file, refused) for ``parts``."""
        try:
            path = self._absolute(parts)
            mode = os.lstat(path).st_mode
        except (OSError, ValueError):
            return ""
        if stat.S_ISDIR(mode):
            return "dir"
        if stat.S_ISREG(mode):
            return "file"
        return ""

    def is_dir(self, parts: RelPath) -> bool:
        """Return whether ``parts`` is a visible directory (the root ``()`` is one)."""
        return self._entry_kind(tuple(parts)) == "dir"

    def is_file(self, parts: RelPath) -> bool:
        """Return whether ``parts`` is a visible regular file."""
        return bool(parts) and self._entry_kind(tuple(parts)) == "file"

    def file_size(self, parts: RelPath) -> int:
        """Return the size in bytes of the visible regular file ``parts``.

        Raises:
            SandboxError: if ``parts`` is not a visible regular file.

        """
        path = self._absolute(tuple(parts))
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            raise SandboxError(errno.EACCES, f"{join_relpath(parts)!r} is not a regular file")
        return info.st_size

    # -- listing ----------------------------------------------------------------------------------------------------
    def listdir(self, parts: RelPath = ()) -> Listing:
        """Return the visible entries of directory ``parts`` (cached for the life of the sandbox).

        A directory that cannot be listed (permissions, vanished, refused) gives an empty listing with ``error`` set.
        """
        parts = tuple(parts)
        cached = self._listings.get(parts)
        if cached is not None:
            return cached
        listing = self._scan(parts)
        self._listings[parts] = listing
        return listing

    def _scan(self, parts: RelPath) -> Listing:
        dirs: list[str] = []
        files: list[str] = []
        try:
            path = self._absolute(parts)
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                return Listing((), (), "not a directory")
            with os.scandir(path) as entries:
                for entry in entries:
                    name = entry.name
                    if not is_visible_name(name, self.show_hidden, self.ignored_names):
                        continue
                    try:
                        mode = entry.stat(follow_symlinks=False).st_mode
                    except OSError:
                        continue
                    if stat.S_ISDIR(mode):
                        dirs.append(name)
                    elif stat.S_ISREG(mode):
                        files.append(name)
                    # symlinks (S_ISLNK), FIFOs, sockets and devices are never shown
        except PermissionError:
            return Listing((), (), "permission denied")
        except OSError as error:
            return Listing((), (), error.strerror or type(error).__name__)
        return Listing(tuple(sorted(dirs)), tuple(sorted(files)))

    def walk(self, parts: RelPath = ()) -> Iterable[tuple[RelPath, Listing]]:
        """Yield ``(dir, listing)`` for ``parts`` and every visible directory below it, depth first, sorted."""
        stack = [tuple(parts)]
        while stack:
            current = stack.pop()
            listing = self.listdir(current)
            yield current, listing
            stack.extend(current + (name,) for name in reversed(listing.dirs))

    # -- reading ----------------------------------------------------------------------------------------------------
    def read_bytes(self, parts: RelPath, limit: int | None = None) -> bytes:
        """Return at most ``limit`` (default ``max_read_bytes``) bytes from the start of the regular file ``parts``.

        Raises:
            SandboxError: if the path is refused or is not a regular file (FIFOs are never opened for reading).
            OSError: e.g. ``PermissionError`` if the file cannot be read.

        """
        parts = tuple(parts)
        limit = self.max_read_bytes if limit is None else int(limit)
        path = self._absolute(parts)
        if not parts or not stat.S_ISREG(os.lstat(path).st_mode):
            raise SandboxError(errno.EACCES, f"{join_relpath(parts)!r} is not a regular file")
        fd = os.open(path, _OPEN_FLAGS)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for something else since the lstat
                raise SandboxError(errno.EACCES, f"{join_relpath(parts)!r} is not a regular file")
            chunks = []
            remaining = limit
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def head(self, parts: RelPath, max_lines: int = 10, max_chars: int = 600, max_line_chars: int = 100) -> str:
        """Return what ``cat`` shows of file ``parts``: its first lines, bounded, or a short note.

        Notes instead of content: ``(binary file)``, ``(empty file)``, ``(cannot read file: permission denied)``,
        ``(not a readable file)``. Truncated output ends with ``[... truncated]``. Results are cached.

        Args:
            parts: The file.
            max_lines: Lines shown at most.
            max_chars: Characters shown at most (before the truncation note).
            max_line_chars: Characters shown at most of each line (longer lines end with ``...``).

        """
        key = (tuple(parts), max_lines, max_chars)
        cached = self._heads.get(key)
        if cached is not None:
            return cached
        text = self._head(tuple(parts), max_lines, max_chars, max_line_chars)
        if len(self._heads) > 4096:
            self._heads.clear()
        self._heads[key] = text
        return text

    def _head(self, parts: RelPath, max_lines: int, max_chars: int, max_line_chars: int) -> str:
        try:
            data = self.read_bytes(parts)
        except PermissionError:
            return "(cannot read file: permission denied)"
        except SandboxError:
            return "(not a readable file)"
        except OSError as error:
            return f"(cannot read file: {(error.strerror or type(error).__name__).lower()})"
        if not data:
            return "(empty file)"
        if looks_binary(data):
            return "(binary file)"
        partial = len(data) >= self.max_read_bytes
        text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
        lines = text.split("\n")
        if partial and len(lines) > 1:
            lines = lines[:-1]  # the last line may be cut in the middle
        truncated = partial
        if lines and lines[-1] == "":
            lines = lines[:-1]
        if len(lines) > max_lines:
            lines, truncated = lines[:max_lines], True
        shown: list[str] = []
        used = 0
        for line in lines:
            line = line.rstrip()
            if len(line) > max_line_chars:
                line = line[: max_line_chars - 3] + "..."
            if used + len(line) > max_chars:
                room = max_chars - used
                if room > 20:
                    shown.append(line[: room - 3] + "...")
                truncated = True
                break
            shown.append(line)
            used += len(line) + 1
        if truncated:
            shown.append("[... truncated]")
        return defuse_markers("\n".join(shown))
