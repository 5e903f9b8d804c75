"""How much of an RL step's gradient is signal? Policy gradients of independent rollout batches, per baseline.

Plays ``--batches`` independent batches of training episodes with one policy (each batch ``--tasks`` seeds played
``--group-size`` times, sampled as in RL training), computes the policy-gradient term of the loss on each batch with
each advantage baseline (no entropy, no KL: only what the rewards say), and prints for each baseline:

* ``cos``: the mean cosine between the gradients of two different batches (1: every batch points the same way;
  0: each batch points somewhere else, so an optimizer step is a random walk);
* ``signal``: ``|mean gradient|^2 / mean |gradient|^2`` over the batches (near ``1/batches`` when there is no signal);
* ``zero``: the share of steps whose advantage is zero (a group whose episodes all did equally well).

It also prints the share of decisions taken with probability below 0.5: with a confident policy there are few, and
they carry the gradient (a choice made with probability ``p`` has ``|d log p / d logits| <= 1 - p``).

    python benchmarks/gradient_noise.py --policy runs/pipeline/dangerous_taxi/policy_sft/export \\
        --reflection runs/pipeline/dangerous_taxi/reflection_sft/export
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datamodules import RolloutDataModule  # noqa: E402
from datamodules.rl_batches import episodes_to_batch  # noqa: E402
from lightning_modules import BackboneSpec, ReflectRLModule  # noqa: E402
from lightning_modules.advantages import baseline_advantages  # noqa: E402

BASELINES = ("batch_mean", "group")


def attached_module(args: argparse.Namespace, scratch: str) -> tuple[ReflectRLModule, RolloutDataModule]:
    """A ReflectRLModule set up on the config's datamodule by a ``fit`` of zero steps (nothing is trained)."""
    datamodule = RolloutDataModule.from_config([args.config])
    datamodule.hparams.episodes_per_step = args.tasks * args.group_size
    module = ReflectRLModule(
        BackboneSpec(name_or_path=args.policy), reflection=args.reflection, baseline="group",
        group_size=args.group_size, rollout_temperature=args.temperature, explore_epsilon=args.epsilon,
        entropy_coef=0.0, kl_coef=0.0, replay_episodes=0, export_dir=scratch,
    )  # fmt: skip
    trainer = L.Trainer(max_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    return module, datamodule


def gradient(module: ReflectRLModule, batch: dict[str, torch.Tensor], baseline: str) -> torch.Tensor:
    """The flattened gradient of the policy-gradient loss under ``baseline``."""
    module.hparams.baseline = baseline
    module.model.zero_grad()
    loss, _ = module.policy_loss(batch)
    loss.backward()
    return torch.cat([p.grad.flatten() for p in module.model.parameters() if p.grad is not None])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "dangerous_taxi" / "reflect_rl.yaml"))
    parser.add_argument("--policy", required=True, help="the policy (an export)")
    parser.add_argument("--reflection", default=None, help="the reflection model's export (none: no reflection)")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=4, help="seeds per batch")
    parser.add_argument("--group-size", type=int, default=4, help="episodes per seed")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--epsilon", type=float, default=0.0)
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as scratch:
        module, datamodule = attached_module(args, scratch)
        module.train()
        items = iter(datamodule.train_dataloader())
        grads: dict[str, list[torch.Tensor]] = {b: [] for b in BASELINES}
        zero: dict[str, list[float]] = {b: [] for b in BASELINES}
        success, steps, unlikely = [], 0, 0
        for _ in range(args.batches):
            episodes = module.rollout(next(items))
            success += [e.success for e in episodes]
            batch = episodes_to_batch(episodes, datamodule.encoder.pad_id)
            steps += len(batch["actions"])
            unlikely += int((batch["old_logprobs"].exp() < 0.5).sum())
            for baseline in BASELINES:
                grads[baseline].append(gradient(module, batch, baseline))
                zero[baseline].append(
                    float((baseline_advantages(batch, baseline, module.hparams.gamma).abs() < 1e-6).float().mean())
                )
    print(f"{args.batches} batches of {args.tasks} tasks x {args.group_size} episodes ({steps} decisions), "
          f"rollout success {sum(success) / len(success):.1%}, {unlikely / steps:.1%} of the decisions taken with "
          f"probability < 0.5; policy {args.policy}, reflection {args.reflection}")  # fmt: skip
    for baseline in BASELINES:
        g = torch.stack(grads[baseline])
        unit = g / g.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        pairs = list(itertools.combinations(range(len(g)), 2))
        cosine = sum(float(unit[i] @ unit[j]) for i, j in pairs) / len(pairs)
        signal = float(g.mean(0).square().sum() / g.square().sum(-1).mean())
        print(f"{baseline:12} cos {cosine:+.3f}  signal {signal:.3f} (none: {1 / len(g):.3f})  "
              f"zero {sum(zero[baseline]) / len(zero[baseline]):.1%}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
