"""Kill a run and resume it with the command a user types: ``reflect-rl fit ... --ckpt_path=<run>/last.ckpt``.

Checkpoints hold plain tensors and containers only, so LightningCLI's ``torch.load(weights_only=True)`` reads them.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from rl_fixtures import TINY

ROOT = Path(__file__).resolve().parents[2]
REFLECT_RL = str(Path(sys.executable).parent / "reflect-rl")
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.num_sanity_val_steps=0"]


def fit(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([REFLECT_RL, "fit", *args, *QUIET], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kwargs)  # fmt: skip


def resume(args: list[str], checkpoint: Path, steps: int) -> dict:
    """Resume with the user's command until ``steps``; return the checkpoint it ends with."""
    done = subprocess.run(
        [REFLECT_RL, "fit", *args, *QUIET, f"--trainer.max_steps={steps}", f"--ckpt_path={checkpoint}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return torch.load(checkpoint, weights_only=True)


def test_a_killed_rl_run_resumes_from_the_command_line_at_its_step_stage_and_replay(exports, tmp_path):
    reflection, policy = exports
    checkpoints = tmp_path / "checkpoints"
    args = [
        "--config", "configs/dangerous_taxi/reflect_rl.yaml", f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--trainer.val_check_interval=1000", f"--model.init_args.backbone.name_or_path={policy}",
        f"--model.init_args.reflection={reflection}", f"--model.init_args.export_dir={tmp_path / 'export'}",
        "--data.num_envs=4", "--data.episodes_per_step=4", "--data.max_reflection_tokens=12",
        "--trainer.callbacks.init_args.every_n_train_steps=2", f"--trainer.callbacks.init_args.dirpath={checkpoints}",
    ]  # fmt: skip
    process = fit([*args, "--trainer.max_steps=1000"])
    last = checkpoints / "last.ckpt"
    deadline = time.time() + 240
    while not (last.exists() and torch.load(last, weights_only=True)["global_step"] >= 4) and time.time() < deadline:
        assert process.poll() is None, f"the training process ended early: {process.stderr.read()[-2000:]}"
        time.sleep(0.5)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    saved = torch.load(last, weights_only=True)  # what LightningCLI reads: no pickled classes
    curriculum = next(v for k, v in saved["callbacks"].items() if "Curriculum" in k)

    ended = resume(args, last, saved["global_step"] + 2)
    assert ended["global_step"] == saved["global_step"] + 2
    assert next(v for k, v in ended["callbacks"].items() if "Curriculum" in k)["index"] >= curriculum["index"]
    assert ended["env_steps"] > saved["env_steps"]  # counted on from the saved total, not from zero
    kept = [e["seed"] for e in saved["replay_buffer"]["episodes"]]
    assert [e["seed"] for e in ended["replay_buffer"]["episodes"]][: len(kept)] == kept


@pytest.mark.parametrize("stage", ["reflection_sft", "policy_sft"])
def test_an_sft_stage_resumes_from_the_command_line(stage, exports, tmp_path):
    reflection, _ = exports
    tiny = f"{{n_layer: {TINY.n_layer}, n_embd: {TINY.n_embd}, n_head: {TINY.n_head}, vocab_size: {TINY.vocab_size}}}"
    model = (
        [f"--model.init_args.backbone.tiny={tiny}", "--model.init_args.backbone.tiny.tokenizer_samples=10"]
        if stage == "reflection_sft"
        else [f"--model.init_args.backbone.name_or_path={reflection}", f"--model.init_args.reflection={reflection}",
              "--model.init_args.val_rollouts=0"]
    )  # fmt: skip
    args = [
        "--config", f"configs/dangerous_taxi/{stage}.yaml", f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--trainer.limit_val_batches=0", "--data.teacher_episodes=4", "--data.num_envs=4", "--data.batch_size=4",
        "--data.max_reflection_tokens=12", f"--model.init_args.export_dir={tmp_path / 'export'}", *model,
        "--trainer.callbacks.init_args.every_n_train_steps=2", f"--trainer.callbacks.init_args.dirpath={tmp_path}",
    ]  # fmt: skip
    first = fit([*args, "--trainer.max_steps=2"])
    assert first.wait(timeout=300) == 0, first.stderr.read()[-3000:]
    ended = resume(args, tmp_path / "last.ckpt", 4)
    assert ended["global_step"] == 4 and ended["state_dict"] and isinstance(ended["hyper_parameters"]["backbone"], dict)
