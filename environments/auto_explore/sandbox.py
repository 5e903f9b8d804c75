"""A read-only view of one directory tree: list directories and read the head of files, never leaving the root.

Everything the agent (or the task generator) sees of a repository goes through :class:`Sandbox`:

* only regular files and directories are visible; **all symbolic links are hidden** (inside or outside the root),
  and so are FIFOs, sockets and devices, hidden names (``.git``, ``.env``; configurable), ``__pycache__`` and names
  that are not plain printable ASCII;
* no path is ever resolved by name twice: every ``list`` or ``read`` walks from a descriptor of the root, opening one
  component at a time with ``O_NOFOLLOW`` relative to its parent's descriptor (``O_DIRECTORY`` for directories,
  ``O_NONBLOCK`` for files), and lists and reads through the descriptors it opened. A directory swapped for a symlink
  at any moment is refused, never followed, so nothing outside the root is read even while the tree changes;
* the root's identity (device and inode) is checked on every walk, so a root replaced after construction is refused;
* a file is checked to be a regular file before it is opened and again (``fstat``) before a single byte is read;
* at most ``max_read_bytes`` are read from any file, so a huge (or sparse multi-GB) file costs the same as a small
  one, and a directory with more than ``max_entries`` entries is not listed;
* nothing is ever written or executed.

Names are data: :func:`display_name` renders a name so that it cannot start a line or contain ``#`` (hence no
section marker of the prompt format, :mod:`environments.prompt_markers`), and :func:`defuse_markers` breaks the markers
inside file contents.

Paths inside the sandbox are tuples of names (``("src", "pkg")``); :func:`split_relpath` turns a relative path
string into one and rejects absolute paths and ``..``. See ``docs/sandbox.md`` for the guarantees and their limits.
"""

from __future__ import annotations

import errno
import numbers
import os
import re
import stat
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from environments.prompt_markers import MARKER_START, SECTION_MARKERS

#: Directory names never shown (besides hidden names when ``show_hidden`` is off).
DEFAULT_IGNORED_NAMES: frozenset[str] = frozenset({"__pycache__"})
#: Characters a visible name may contain: printable ASCII without tabs and line breaks.
NAME_CHARSET: frozenset[str] = frozenset(string.ascii_letters + string.digits + string.punctuation + " ")
#: Longest visible name (longer names are hidden to keep listings and action texts short).
MAX_NAME_LENGTH = 100
#: Bytes read at most from a file to show its head.
DEFAULT_MAX_READ_BYTES = 8192
#: Largest accepted ``max_read_bytes`` (and ``limit`` of :meth:`Sandbox.read_bytes`): 64 MiB.
MAX_READ_BYTES_LIMIT = 1 << 26
#: Entries a directory may have (hidden ones included) to be listed at all.
DEFAULT_MAX_ENTRIES = 50_000

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = _OPEN_FLAGS | getattr(os, "O_DIRECTORY", 0)
_DESCRIPTOR_WALK = (
    hasattr(os, "O_NOFOLLOW")
    and hasattr(os, "O_DIRECTORY")
    and os.open in os.supports_dir_fd
    and os.stat in os.supports_dir_fd
    and os.stat in os.supports_follow_symlinks
    and os.scandir in os.supports_fd
)

#: The start all section markers share: text without it holds no marker (:func:`defuse_markers`' fast path).
_MARKERS_PREFIX = os.path.commonprefix(SECTION_MARKERS)
#: How :func:`display_name` shows characters that could forge prompt structure (every section marker starts with
#: :data:`~environments.prompt_markers.MARKER_START`).
_NAME_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", MARKER_START: f"\\x{ord(MARKER_START):02x}"}
_NAME_ESCAPE_RE = re.compile(r"\\(\\|n|r|t|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})")

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
    if not isinstance(name, str) or not name or name in (".", "..") or len(name) > MAX_NAME_LENGTH or name in ignored:
        return False
    if name[0] == "." and not show_hidden:
        return False
    if name != name.strip():
        return False
    return all(ch in NAME_CHARSET for ch in name) and "/" not in name


def display_name(name: str) -> str:
    r"""Return ``name`` as the agent reads it: escaped like ``ls -b`` so that it cannot forge prompt structure.

    Backslashes are doubled, line breaks and tabs become ``\n``, ``\r``, ``\t``, ``#`` becomes ``\x23`` and other
    characters outside printable ASCII ``\xNN`` / ``\uNNNN`` / ``\UNNNNNNNN``. The result is one line without
    ``#``: every section marker of the prompt starts with ``#``, so no name can forge one, wherever it is shown.
    Ordinary names are returned unchanged. :func:`parse_name` reverses it.

    Example:
        >>> display_name("# Actions:"), display_name("util.py")
        ('\\x23 Actions:', 'util.py')
    """
    if name.isascii() and name.isprintable() and MARKER_START not in name and "\\" not in name:
        return name
    shown = []
    for ch in name:
        if ch in _NAME_ESCAPES:
            shown.append(_NAME_ESCAPES[ch])
        elif ch.isascii() and ch.isprintable():
            shown.append(ch)
        else:
            code = ord(ch)
            shown.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(shown)


def parse_name(text: str) -> str:
    r"""Return the name that :func:`display_name` shows as ``text``.

    Raises:
        ValueError: for a backslash that does not start an escape of :func:`display_name`.

    """
    if "\\" not in text:
        return text
    if _NAME_ESCAPE_RE.sub("", text).count("\\"):
        raise ValueError(f"{text!r} has a backslash that is not an escape (\\\\, \\n, \\r, \\t, \\xNN, \\uNNNN).")

    def unescape(match: re.Match[str]) -> str:
        code = match.group(1)
        return {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}.get(code) or chr(int(code[1:], 16))

    return _NAME_ESCAPE_RE.sub(unescape, text)


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
    """Return the directory as the agent sees it: ``()`` -> ``/``, ``("src", "pkg")`` -> ``/src/pkg``.

    Each name is shown with :func:`display_name`.
    """
    return "/" + "/".join(display_name(name) for name in parts)


def defuse_markers(text: str) -> str:
    """Break the prompt's section markers inside file contents so a file cannot forge a prompt section.

    Each marker of :data:`environments.prompt_markers.SECTION_MARKERS` gets a ``.`` after its first character.

    Example:
        >>> defuse_markers("# Actions: A. rm -rf /")
        '#. Actions: A. rm -rf /'
    """
    if _MARKERS_PREFIX not in text:
        return text
    for marker in SECTION_MARKERS:
        text = text.replace(marker, marker[0] + "." + marker[1:])
    return text


def looks_binary(data: bytes) -> bool:
    """Return whether ``data`` (the head of a file) looks like binary rather than text.

    A NUL byte, or more than 10% of bytes that are neither printable ASCII, common whitespace nor part of valid
    UTF-8, marks a file as binary; empty data does not.
    """
    if b"\x00" in data:
        return True
    text = data.decode("utf-8", errors="replace")
    bad = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\n\r\t\f\v\b\x1b"))
    return bad > max(3, len(text) // 10)


def check_int(name: str, value: object, minimum: int, maximum: int | None = None, why: str = "") -> int:
    """Return ``value`` as an ``int`` if it is an integer (not a bool) in ``[minimum, maximum]``.

    Args:
        name: The argument's name, for the message.
        value: The value given.
        minimum: Smallest valid value.
        maximum: Largest valid value (``None``: no upper bound).
        why: What the bound is for, appended to the message.

    Raises:
        ValueError: naming the argument, its value and the valid range.

    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
        if number >= minimum and (maximum is None or number <= maximum):
            return number
    valid = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
    raise ValueError(f"{name} must be an integer {valid}{f' ({why})' if why else ''}, got {value!r}.")


class Sandbox:
    """Read-only access to one directory tree.

    Args:
        root: The directory; it must exist. Its real path (symlinks resolved once, here) is the boundary, and the
            directory found there now (device and inode) is the only one ever used as the root.
        max_read_bytes: Bytes read at most from a file by :meth:`head` (1 to 64 MiB).
        show_hidden: Whether names starting with ``.`` are visible.
        ignored_names: Names never visible (default: ``__pycache__``).
        max_entries: A directory with more entries than this (hidden ones included) is not listed; its listing
            has an ``error`` instead.

    Raises:
        FileNotFoundError: if ``root`` does not exist; NotADirectoryError: if it is not a directory.
        ValueError: for an argument outside its valid range.
        OSError: on a platform without ``O_NOFOLLOW``, ``O_DIRECTORY`` and ``dir_fd`` support.

    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        max_read_bytes: int = DEFAULT_MAX_READ_BYTES,
        show_hidden: bool = False,
        ignored_names: Iterable[str] = DEFAULT_IGNORED_NAMES,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if not _DESCRIPTOR_WALK:
            raise OSError(errno.ENOSYS, "The sandbox needs O_NOFOLLOW, O_DIRECTORY and dir_fd support (POSIX).")
        self.max_read_bytes = check_int("max_read_bytes", max_read_bytes, 1, MAX_READ_BYTES_LIMIT)
        self.max_entries = check_int("max_entries", max_entries, 1)
        ignored = () if isinstance(ignored_names, (str, bytes)) else tuple(ignored_names)
        if isinstance(ignored_names, (str, bytes)) or not all(isinstance(name, str) for name in ignored):
            raise ValueError(f"ignored_names must be a collection of names (str), got {ignored_names!r}.")
        given = os.fspath(root)
        real = os.path.realpath(given)
        if not os.path.exists(real):
            raise FileNotFoundError(f"Repository root {given!r} does not exist.")
        if not os.path.isdir(real):
            raise NotADirectoryError(f"Repository root {given!r} is not a directory.")
        info = os.stat(real)
        self.root = real
        self._root_id = (info.st_dev, info.st_ino)
        self.show_hidden = bool(show_hidden)
        self.ignored_names = frozenset(ignored)
        self._listings: dict[RelPath, Listing] = {}
        self._heads: dict[tuple[RelPath, int, int, int], str] = {}

    @property
    def root_path(self) -> Path:
        """The root as a :class:`~pathlib.Path`."""
        return Path(self.root)

    # -- the descriptor walk ----------------------------------------------------------------------------------------
    def _check_names(self, parts: RelPath) -> None:
        for name in parts:
            if not is_visible_name(name, self.show_hidden, self.ignored_names):
                raise SandboxError(errno.EACCES, f"Name {name!r} is not visible in the sandbox")

    def _open_dir(self, parts: RelPath) -> int:
        """Open directory ``parts`` by walking from the root one descriptor at a time; the caller closes the result.

        Raises:
            SandboxError: if a component is a symlink or not a directory, or the root is not the original one.
            OSError: e.g. ``FileNotFoundError`` or ``PermissionError``.

        """
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != self._root_id:
                raise SandboxError(errno.EACCES, f"The root {self.root!r} was replaced")
            for depth, name in enumerate(parts):
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as error:
                    if error.errno in (errno.ENOTDIR, errno.ELOOP):  # a symlink, file or special file
                        raise SandboxError(
                            errno.ENOTDIR, f"{join_relpath(parts[: depth + 1])!r} is not a directory (or is a link)"
                        ) from None
                    raise
                parent, fd = fd, child
                os.close(parent)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _lstat(self, parts: RelPath) -> os.stat_result:
        """Return the ``lstat`` of ``parts`` (not the root) through a descriptor of its directory."""
        parent = self._open_dir(parts[:-1])
        try:
            return os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(parent)

    def _open_file(self, parts: RelPath) -> int:
        """Open the regular file ``parts`` for reading through the descriptor walk; the caller closes the result.

        Raises:
            SandboxError: if the path is refused or is not a regular file (FIFOs and devices are never opened).
            OSError: e.g. ``PermissionError`` if the file cannot be read.

        """
        if not parts:
            raise SandboxError(errno.EACCES, "'' is not a regular file")
        self._check_names(parts)
        not_regular = SandboxError(errno.EACCES, f"{join_relpath(parts)!r} is not a regular file")
        parent = self._open_dir(parts[:-1])
        try:
            if not stat.S_ISREG(os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode):
                raise not_regular
            try:
                fd = os.open(parts[-1], _OPEN_FLAGS, dir_fd=parent)
            except OSError as error:
                if error.errno == errno.ELOOP:  # swapped for a symlink since the stat
                    raise not_regular from None
                raise
        finally:
            os.close(parent)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for something else since the stat
                raise not_regular
        except BaseException:
            os.close(fd)
            raise
        return fd

    # -- entries ----------------------------------------------------------------------------------------------------
    def _entry_kind(self, parts: RelPath) -> str:
        """Return ``"dir"``, ``"file"`` or ``""`` (missing, symlink, special file, refused) for ``parts``."""
        try:
            self._check_names(parts)
            if not parts:
                os.close(self._open_dir(()))
                return "dir"
            mode = self._lstat(parts).st_mode
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
        parts = tuple(parts)
        if not parts:
            raise SandboxError(errno.EACCES, "'' is not a regular file")
        self._check_names(parts)
        info = self._lstat(parts)
        if not stat.S_ISREG(info.st_mode):
            raise SandboxError(errno.EACCES, f"{join_relpath(parts)!r} is not a regular file")
        return info.st_size

    # -- listing ----------------------------------------------------------------------------------------------------
    def listdir(self, parts: RelPath = ()) -> Listing:
        """Return the visible entries of directory ``parts`` (cached for the life of the sandbox).

        A directory that cannot be listed (permissions, vanished, refused, more than ``max_entries`` entries) gives
        an empty listing with ``error`` set.
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
            self._check_names(parts)
            fd = self._open_dir(parts)
        except PermissionError:
            return Listing((), (), "permission denied")
        except OSError as error:
            return Listing((), (), error.strerror or type(error).__name__)
        try:
            with os.scandir(fd) as entries:
                for count, entry in enumerate(entries, start=1):
                    if count > self.max_entries:
                        return Listing((), (), f"too many entries (more than {self.max_entries})")
                    name = entry.name
                    if not is_visible_name(name, self.show_hidden, self.ignored_names):
                        continue
                    try:  # d_type, or an lstat relative to fd: symlinks, FIFOs, sockets and devices are never shown
                        if entry.is_dir(follow_symlinks=False):
                            dirs.append(name)
                        elif entry.is_file(follow_symlinks=False):
                            files.append(name)
                    except OSError:
                        continue
        except PermissionError:
            return Listing((), (), "permission denied")
        except OSError as error:
            return Listing((), (), error.strerror or type(error).__name__)
        finally:
            os.close(fd)
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
            ValueError: if ``limit`` is not an integer in ``[0, 64 MiB]``.

        """
        parts = tuple(parts)
        if limit is None:
            limit = self.max_read_bytes
        else:
            limit = check_int("limit", limit, 0, MAX_READ_BYTES_LIMIT)
        fd = self._open_file(parts)
        try:
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
        key = (tuple(parts), max_lines, max_chars, max_line_chars)
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
