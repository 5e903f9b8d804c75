"""Reading user-given files: regular files only, and JSON or JSONL with errors that name the file and the line.

Every file a user names (task files, datasets, configs, checkpoints) is checked with :func:`regular_file` before it
is opened, so that a directory, a named pipe or a device is reported in words instead of read (a named pipe would
block forever). :func:`output_file` checks a path that is about to be written.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

#: What a file that is not a regular file is, by its ``stat`` mode.
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def regular_file(path: str | os.PathLike[str], what: str = "File") -> Path:
    """Return ``path`` if it names a regular file (or a symbolic link to one), else raise an error that says why.

    Args:
        path: The file a user named.
        what: How the message names it, e.g. ``"Task file"`` or ``"--config"``.

    Raises:
        FileNotFoundError: if nothing is there (or a parent is not a directory).
        IsADirectoryError: for a directory.
        OSError: for a named pipe, a socket or a device (reading one could block forever), or a file that cannot be
            inspected.

    Example:
        >>> regular_file("configs/dangerous_taxi/reflect_rl.yaml", "--config")
        PosixPath('configs/dangerous_taxi/reflect_rl.yaml')
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"{what} {path} does not exist; give the path of an existing file.") from None
    except OSError as error:
        raise OSError(f"{what} {path} cannot be read ({error.strerror}); give a readable file.") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{what} {path} is a directory, not a file; give the path of a file in it.")
    if not stat.S_ISREG(mode):
        raise OSError(f"{what} {path} is {_kind(mode)}, not a regular file; give the path of a regular file.")
    return path


def open_regular(path: str | os.PathLike[str], what: str = "File") -> BinaryIO:
    """Open a regular file for binary reading, refusing anything else without blocking.

    The file is opened without blocking and checked again on the open descriptor, so that a path swapped for a named
    pipe between the check and the open cannot block either.

    Raises:
        The errors of :func:`regular_file`.
    """
    path = regular_file(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise OSError(f"{what} {path} cannot be opened ({error.strerror}); give a readable file.") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise OSError(f"{what} {path} is {_kind(mode)}, not a regular file; give the path of a regular file.")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_text(path: str | os.PathLike[str], what: str = "File", error: type[Exception] = ValueError) -> str:
    """Read a regular UTF-8 text file whole.

    Raises:
        error: for bytes that are not UTF-8, naming the file and the line.
        The errors of :func:`regular_file`.
    """
    with open_regular(path, what) as handle:
        data = handle.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as problem:
        line = data.count(b"\n", 0, problem.start) + 1
        byte = data[problem.start]
        raise error(f"{path}:{line}: not UTF-8 text (byte {byte:#04x}); save the file as UTF-8.") from None


def output_file(path: str | os.PathLike[str], what: str = "Output") -> Path:
    """Return ``path`` if a file can be written there: it is absent or a regular file, and no parent is a file.

    Missing parent directories are fine (writers create them).

    Raises:
        IsADirectoryError: if ``path`` is a directory.
        NotADirectoryError: if a parent of ``path`` is a file.
        OSError: if ``path`` is a named pipe, a socket or a device.

    Example:
        >>> output_file("runs/tasks.jsonl", "--out")
        PosixPath('runs/tasks.jsonl')
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    if mode is not None:
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{what} {path} is a directory; give a file path, e.g. {path / 'tasks.jsonl'}.")
        if not stat.S_ISREG(mode):
            raise OSError(f"{what} {path} is {_kind(mode)}; give the path of a regular file to write.")
        return path
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(
                    f"{what} {path} cannot be written: {parent} is a file, not a directory; give another path."
                )
            break
    return path


def _value_message(where: str, problem: ValueError) -> str:
    """The message of a JSON value Python refuses to convert, such as an integer of more than 4300 digits."""
    reason = str(problem).split(";")[0].rstrip(".")
    return f"{where}: unreadable JSON value: {reason}; shorten or remove that value."


def _loads(text: str, where: str, error: type[Exception]) -> Any:
    """``json.loads`` with every parse failure as ``error`` naming ``where`` (``file:line``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as problem:
        raise error(f"{where}: not valid JSON: {problem.msg} (column {problem.colno}).") from None
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply to read; flatten the record.") from None
    except ValueError as problem:  # e.g. an integer longer than Python converts (sys.get_int_max_str_digits())
        raise error(_value_message(where, problem)) from None


def jsonl_records(
    path: str | os.PathLike[str], error: type[Exception], what: str = "File"
) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, record)`` for each non-blank line of a JSONL file.

    Args:
        path: The JSONL file (a regular file, see :func:`regular_file`).
        error: Exception raised for a line that cannot be read.
        what: How a message about the path itself names the file.

    Raises:
        error: for a line that is not UTF-8 or not valid JSON, nested too deeply or holding a number too long to
            convert, naming the file and the line.
        The errors of :func:`regular_file`.

    Example:
        >>> for number, record in jsonl_records("tasks.jsonl", ValueError):
        ...     print(number, record["task_id"])
    """
    with open_regular(path, what) as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as problem:
                raise error(
                    f"{path}:{number}: not UTF-8 text (byte {raw[problem.start]:#04x} at column {problem.start + 1});"
                    " save the file as UTF-8."
                ) from None
            if not line.strip():
                continue
            yield number, _loads(line, f"{path}:{number}", error)


def json_list_records(
    path: str | os.PathLike[str], error: type[Exception], what: str = "File"
) -> list[tuple[int, int, Any]]:
    """Read a file holding one JSON list; return ``(position, line, record)`` per element (position from 1).

    Each element is parsed on its own, so a failure names the line where the element starts.

    Raises:
        error: for a file that is not UTF-8, not a JSON list or holds an unreadable element, naming file and line.
        The errors of :func:`regular_file`.
    """
    text = read_text(path, what, error)
    decoder = json.JSONDecoder()

    def line_of(index: int) -> int:
        return text.count("\n", 0, index) + 1

    def skip(index: int) -> int:
        while index < len(text) and text[index] in " \t\r\n":
            index += 1
        return index

    index = skip(0)
    if not text.startswith("[", index):
        raise error(f"{path}:{line_of(index)}: expected a JSON list of records ('[').")
    records: list[tuple[int, int, Any]] = []
    index = skip(index + 1)
    if text.startswith("]", index):
        index += 1
    else:
        while True:
            start = index
            where = f"{path}:{line_of(start)}"
            try:
                record, index = decoder.raw_decode(text, index)
            except json.JSONDecodeError as problem:
                where = f"{path}:{problem.lineno}"
                raise error(f"{where}: not valid JSON: {problem.msg} (column {problem.colno}).") from None
            except RecursionError:
                raise error(f"{where}: JSON nested too deeply to read; flatten the record.") from None
            except ValueError as problem:
                raise error(_value_message(where, problem)) from None
            records.append((len(records) + 1, line_of(start), record))
            index = skip(index)
            if text.startswith(",", index):
                index = skip(index + 1)
            elif text.startswith("]", index):
                index += 1
                break
            else:
                raise error(f"{path}:{line_of(index)}: not valid JSON: expected ',' or ']' after a record.")
    if skip(index) != len(text):
        raise error(f"{path}:{line_of(skip(index))}: not valid JSON: extra data after the list.")
    return records
