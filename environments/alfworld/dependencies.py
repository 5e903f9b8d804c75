"""The optional ``alfworld`` extra: checking that it is installed without importing it."""

from __future__ import annotations

import importlib.util

#: What to run when the extra is missing.
INSTALL_HINT = (
    "Install the optional extra: pip install -e '.[alfworld]' (from a checkout) or pip install 'reflect-rl[alfworld]'."
)
#: The modules the ALFWorld environment needs: the wheel, TextWorld and its fast-downward planner.
REQUIRED_MODULES: tuple[str, ...] = ("alfworld", "textworld", "fast_downward")


def missing_modules() -> list[str]:
    """The modules of :data:`REQUIRED_MODULES` that cannot be found (found ones are not imported)."""
    missing = []
    for name in REQUIRED_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def require_alfworld() -> None:
    """Check that the ``alfworld`` extra is installed.

    Raises:
        ModuleNotFoundError: naming the missing modules and the extra to install.
    """
    missing = missing_modules()
    if missing:
        raise ModuleNotFoundError(
            f"ReflectRL/ALFWorld-v1 needs the ALFWorld text engine, which is not installed (missing: "
            f"{', '.join(missing)}). {INSTALL_HINT}"
        )
