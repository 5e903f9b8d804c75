"""Write docs/api.md: the public API (each package's ``__all__``) with signatures and the first docstring paragraph.

Usage:
    python scripts/api_page.py            # rewrite docs/api.md
    python scripts/api_page.py --check    # exit 1 if docs/api.md is not what the code says (the tests run this)
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("environments", "datamodules", "lightning_modules", "callbacks")
PAGE = ROOT / "docs" / "api.md"


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _signature(name: str, obj) -> str:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return name
    parameters = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    return f"{name}{signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty)}"


def render() -> str:
    """The page, from the code."""
    sys.path.insert(0, str(ROOT))
    lines = [
        "# API",
        "",
        "The public names of each package (its `__all__`), generated from the code by `python scripts/api_page.py`; a",
        "test fails when this page and the code disagree. Every class and function has a docstring with an example:",
        "`help(name)` or the source shows it.",
        "",
    ]
    for package in PACKAGES:
        module = importlib.import_module(package)
        lines += [f"## `{package}`", "", _summary(module), ""]
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                kind = "class" if inspect.isclass(obj) else "function"
                lines += [f"### `{_signature(name, obj)}`", "", f"*{kind}* (`{obj.__module__}`). {_summary(obj)}", ""]
            else:
                lines += [f"### `{name}`", "", f"*constant* ({type(obj).__name__}).", ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    page = render()
    if args.check:
        if not PAGE.is_file() or PAGE.read_text() != page:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python scripts/api_page.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page)
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
