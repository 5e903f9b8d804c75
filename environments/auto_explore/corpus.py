"""The default corpus: source trees of Python packages installed with the project, split by repository.

Every package named here is a dependency (or a dependency of one) of the project, so the corpus is available offline
wherever the project is installed. Splits are by package, never by file: a package's tree is in one split only.
``lightning`` and ``pytorch_lightning`` ship the same code, so only ``lightning`` is used.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: Default packages per split (train: larger and varied; validation and test: held-out packages).
DEFAULT_SPLIT_PACKAGES: dict[str, tuple[str, ...]] = {
    "train": ("lightning", "transformers", "peft", "torchmetrics", "tensorboard", "matplotlib"),
    "val": ("jsonargparse", "huggingface_hub"),
    "test": ("gymnasium", "networkx"),
}


def package_root(name: str) -> Path:
    """Return the source directory of the installed package ``name`` (found with :func:`importlib.util.find_spec`).

    Args:
        name: A top-level import name, e.g. ``"gymnasium"``.

    Raises:
        ModuleNotFoundError: if the package is not installed.
        ValueError: if ``name`` is a single-file module or has no directory on disk.

    """
    if not name or "." in name:
        raise ValueError(f"package_root expects a top-level package name, got {name!r}.")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as error:
        raise ModuleNotFoundError(f"Cannot locate package {name!r}: {error}", name=name) from error
    if spec is None:
        raise ModuleNotFoundError(
            f"Package {name!r} is not installed in this environment (python -m pip install {name}), "
            "or pass the directory with --roots instead.",
            name=name,
        )
    locations = list(spec.submodule_search_locations or [])
    if not locations:
        raise ValueError(f"{name!r} is a single-file module ({spec.origin}), not a package directory.")
    root = Path(locations[0]).resolve()
    if not root.is_dir():
        raise ValueError(f"Package {name!r} has no directory on disk ({root}).")
    return root


def default_split_roots() -> dict[str, list[Path]]:
    """Return the roots of :data:`DEFAULT_SPLIT_PACKAGES`, per split.

    Raises:
        ModuleNotFoundError: if one of the packages is not installed.

    """
    return {split: [package_root(name) for name in names] for split, names in DEFAULT_SPLIT_PACKAGES.items()}
