"""Reading a stage config as plain YAML, with its ``data`` section resolved as LightningCLI resolves it.

The two SFT stages of a profile share one data section: their configs say ``data: sft_data.yaml``, a file reference
that jsonargparse (under LightningCLI) loads relative to the config's folder. Code that reads a config without
LightningCLI (the pipeline, ``RolloutDataModule.from_config``, the benchmarks) goes through :func:`load_stage_config`,
so that it sees the same data section ``reflect-rl fit`` does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import yaml

from environments.jsonl import regular_file


def load_stage_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A stage config as a dict, its ``data`` file reference (if it has one) replaced by the file's content.

    A ``data`` value that is a string names a YAML file holding the section; a relative name is read from the
    config's folder, as LightningCLI does. A mapping is kept as it is.

    Args:
        path: The stage config.

    Returns:
        The config with its ``data`` section inline (an empty dict for an empty file).

    Raises:
        FileNotFoundError: for a missing config or data file; OSError: for one that is not a regular file (a named
            pipe, ...); ValueError: for a data file that is not a mapping.

    Example:
        >>> config = load_stage_config("configs/dangerous_taxi/policy_sft.yaml")  # says data: sft_data.yaml
        >>> config["data"]["teacher_episodes"]
        100
    """
    path = regular_file(path, "Config")
    config = yaml.safe_load(path.read_text()) or {}
    reference = config.get("data")
    if isinstance(reference, str):
        data_path = regular_file(path.parent / reference, f"The data file of {path},")  # absolute stays absolute
        section = yaml.safe_load(data_path.read_text())
        if not isinstance(section, Mapping):
            raise ValueError(f"{data_path} (the data section of {path}) is not a mapping of data options.")
        config["data"] = dict(section)
    return config
