"""docs/api.md lists exactly the public API, and every public class and function documents an example."""

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("environments", "datamodules", "lightning_modules", "callbacks")


def test_the_api_page_matches_the_code():
    command = [sys.executable, "scripts/api_page.py", "--check"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_public_class_and_function_has_a_docstring_with_an_example():
    missing = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and "\nExample" not in (inspect.getdoc(obj) or ""):
                missing.append(f"{package}.{name}")
    assert not missing, f"no Example: section in the docstring of {', '.join(missing)}"
