"""Synthetic repositories and independent checks for the AutoExplore tests."""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

SECRET = "TOPSECRET-do-not-leak"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_repo(root: Path, name: str = "proj") -> Path:
    """Build a small repository with targets at depths 0-4, duplicates, vendored and hidden code."""
    repo = root / name
    write(repo / "README.md", "# Project Overview\n\nSome text.\n\n## Getting Started\n\nRun it.\n")
    write(repo / "setup.py", "def build_package():\n    return 1\n")
    write(repo / "src" / "pkg" / "__init__.py", '"""The package."""\n')
    write(
        repo / "src" / "pkg" / "core.py",
        "import os\n\n\nclass Engine:\n    def start(self):\n        pass\n\n\ndef run_engine(engine):\n"
        "    return engine\n\n\nasync def fetch_remote():\n    pass\n",
    )
    write(repo / "src" / "pkg" / "utils" / "__init__.py", "")
    write(
        repo / "src" / "pkg" / "utils" / "strings.py",
        "def slugify_text(text):\n    return text\n\n\ndef snake_case(name):\n    return name\n",
    )
    write(repo / "src" / "pkg" / "utils" / "math_helpers.py", "def clamp_value(x):\n    return x\n")
    write(
        repo / "src" / "pkg" / "io" / "readers.py",
        "class RecordReader:\n    pass\n\n\ndef read_records(p):\n    pass\n",
    )
    write(repo / "src" / "pkg" / "io" / "deep" / "deeper.py", "def deep_function():\n    pass\n")
    # the same name in two files: never a question
    write(repo / "src" / "pkg" / "alpha.py", "def shared_name():\n    pass\n")
    write(repo / "src" / "pkg" / "beta.py", "def shared_name():\n    pass\n")
    # a method with the name of another file's function: clamp_value is not unique any more
    write(repo / "src" / "pkg" / "shapes.py", "class Shape:\n    def clamp_value(self):\n        pass\n")
    write(repo / "data" / "prices.csv", "date,ticker,closing_price\n2020-01-01,ABC,1.0\n")
    write(repo / "data" / "people.tsv", "full_name\tage\tcity\nAda\t36\tLondon\n")
    write(repo / "data" / "more.csv", "date,region\n2020,EU\n")
    write(
        repo / "docs" / "guide.md",
        "# User Guide\n\n## Configuration Options\n\n```bash\n# Not A Heading\n```\n\nSetext Title\n------------\n",
    )
    write(repo / "docs" / "api.rst", "API Reference\n=============\n\nSome text.\n\nGetting Started\n---------------\n")
    write(repo / "tests" / "test_core.py", "def test_engine():\n    pass\n\n\ndef helper_for_tests():\n    pass\n")
    write(repo / "vendor" / "lib.py", "def vendored_function():\n    pass\n")
    write(repo / ".hidden" / "secret.py", "def hidden_function():\n    pass\n")
    write(repo / "src" / "pkg" / "blob.py", "def binary_looking():\n    pass\n\x00\x00\x00")
    return repo


def make_wide_repo(root: Path, dirs: int = 40, files: int = 80) -> Path:
    """A repository whose root has more entries than a small action space can show."""
    repo = root / "wide"
    for i in range(dirs):
        write(repo / f"d{i:02d}" / f"mod{i:02d}.py", f"def dir_function_{i:02d}():\n    pass\n")
    for i in range(files):
        write(repo / f"f{i:02d}.py", f"def file_function_{i:02d}():\n    pass\n")
    return repo


def make_hostile_repo(root: Path) -> Path:
    """A tree full of escapes: links out of it, link chains, a FIFO, a socket, huge/binary/unreadable files."""
    outside = root / "outside"
    write(outside / "secret.txt", f"{SECRET}\n")
    write(outside / "secret.py", f"def leaked_function():\n    '{SECRET}'\n")
    repo = root / "hostile"
    write(repo / "ok.py", "def safe_function():\n    pass\n")
    write(repo / "sub" / "inner.py", "def inner_function():\n    pass\n")
    os.symlink("/etc", repo / "etc_link")
    os.symlink("/etc/passwd", repo / "passwd_link")
    os.symlink(outside / "secret.txt", repo / "secret_link.txt")
    os.symlink(outside / "secret.py", repo / "secret_link.py")
    os.symlink(outside, repo / "outside_dir")
    os.symlink(repo / "chain2", repo / "chain1")
    os.symlink("../outside", repo / "chain2")
    os.symlink("sub", repo / "inner_dir_link")
    os.symlink("sub/inner.py", repo / "inner_file_link.py")
    os.symlink(repo / "missing", repo / "dangling")
    os.symlink("/etc/passwd", repo / "sub" / "deep_passwd")
    os.mkfifo(repo / "pipe.py")
    os.mkfifo(repo / "sub" / "pipe.md")
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(repo / "sock"))
        sock.close()
    except OSError:
        pass
    try:
        os.mknod(repo / "null_device", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except (OSError, AttributeError):
        pass
    with open(repo / "huge.py", "wb") as huge:
        huge.write(b"def huge_function():\n    pass\n" + b"# filler line\n" * 2000)
        huge.truncate(4 * 1024**3)  # sparse: 4 GB that must never be read whole
    write(repo / "blob.bin", "").write_bytes(bytes(range(256)) * 64)
    write(repo / "evil\nname.py", "def evil_function():\n    pass\n")
    unreadable = write(repo / "locked.py", "def locked_function():\n    pass\n")
    unreadable.chmod(0)
    return repo


def visible_files(root: Path) -> list[Path]:
    """Every regular, non-link file an agent could see (no hidden names, no __pycache__), found with os.walk."""
    found = []
    for here, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [
            d for d in dirs if not d.startswith(".") and d != "__pycache__" and not os.path.islink(Path(here, d))
        ]
        for name in files:
            path = Path(here, name)
            if name.startswith(".") or path.is_symlink() or not stat.S_ISREG(path.lstat().st_mode):
                continue
            found.append(path)
    return found


_TEXT_CACHE: dict[Path, str | None] = {}


def _read_text(path: Path) -> str | None:
    if path not in _TEXT_CACHE:
        try:
            _TEXT_CACHE[path] = path.read_bytes()[:50_000_000].decode("utf-8", errors="replace")
        except OSError:
            _TEXT_CACHE[path] = None
    return _TEXT_CACHE[path]


def independent_answers(root: str | Path, kind: str, subject: str) -> set[str]:
    """Every file that answers a question, found independently of the generator (and more loosely)."""
    root = Path(root)
    answers = set()
    if kind in ("function", "class"):
        pattern = re.compile(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(subject)}\b", re.MULTILINE)
        extensions = (".py", ".pyi")
    elif kind == "column":
        extensions = (".csv", ".tsv")
    else:
        extensions = (".md", ".markdown", ".rst")
    wanted = " ".join(subject.split()).casefold()
    for path in visible_files(root):
        if not path.name.lower().endswith(extensions):
            continue
        text = _read_text(path)
        if text is None or (kind in ("function", "class") and subject not in text):
            continue
        rel = path.relative_to(root).as_posix()
        if kind in ("function", "class"):
            if pattern.search(text):
                answers.add(rel)
        elif kind == "column":
            header = text.split("\n", 1)[0]
            fields = re.split(r"[,\t]", header)
            if any(" ".join(f.strip().strip('"').split()).casefold() == wanted for f in fields):
                answers.add(rel)
        else:
            for line in text.splitlines():
                if " ".join(line.strip().strip("#").split()).casefold() == wanted:
                    answers.add(rel)
                    break
    return answers
