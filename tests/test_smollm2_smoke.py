"""The SmolLM2 smoke script (benchmarks/smollm2_smoke.py) on the CPU profiles with a tiny Llama in SmolLM2's place."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from smollm2_smoke import main  # noqa: E402


def test_smoke_runs_the_three_stages_and_the_test_and_reports_them(tmp_path):
    small = ["--steps", "2", "--rl-steps", "1", "--rl-episodes", "4", "--episodes", "2", "--batch-size", "4"]
    assert main(["--cpu", "--tiny-llama", "--output-dir", str(tmp_path), *small, "--max-reflection-tokens", "12"]) == 0
    report = json.loads((tmp_path / "smoke.json").read_text())
    assert list(report["stages"]) == ["reflection_sft", "policy_sft", "reflect_rl", "test"]
    assert all(stage["seconds"] > 0 and stage["peak_memory_mb"] > 0 for stage in report["stages"].values())
    assert 0 <= report["test"]["test/success_rate"] <= 1 and "test/success_rate_sampled" in report["test"]
    adapter = json.loads((tmp_path / "reflect_rl" / "export" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(tmp_path / "tiny_llama")  # LoRA on the pretrained model
    assert "| reflect_rl |" in (tmp_path / "smoke.md").read_text()
