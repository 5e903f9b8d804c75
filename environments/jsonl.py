"""Reading JSONL files line by line, with errors that name the file and the line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def jsonl_records(path: str | os.PathLike[str], error: type[Exception]) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, record)`` for each non-blank line of a JSONL file.

    Raises:
        error: for a line that is not valid JSON, naming the file, the line and the column.

    Example:
        >>> for number, record in jsonl_records("tasks.jsonl", ValueError):
        ...     print(number, record["task_id"])
    """
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as problem:
                raise error(f"{path}:{number}: not valid JSON: {problem.msg} (column {problem.colno}).") from None
            yield number, record
