"""How many decisions did RL change? Greedy choices of a policy before and after RL on the same held-out turns.

Plays the validation episodes of a config with the starting policy (greedy, its reflection model reflecting), then
scores every turn of those episodes with each later policy on exactly the same prompts, and prints the share of turns
whose greedy choice changed, the mean entropy and the mean probability of the chosen action of each policy, and how
the changes split between turns where the reflection was right and where it was wrong.

    python benchmarks/changed_decisions.py --start runs/pipeline/dangerous_taxi/policy_sft/export \\
        --after runs/pipeline/dangerous_taxi/reflect_rl/export \\
        --reflection runs/pipeline/dangerous_taxi/reflection_sft/export
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datamodules import RolloutDataModule  # noqa: E402
from lightning_modules import ActionHead, Agent, BackboneSpec, Reflector, load_backbone  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "dangerous_taxi" / "reflect_rl.yaml"))
    parser.add_argument("--start", required=True, help="the policy RL started from (an export)")
    parser.add_argument("--after", action="append", required=True, help="a policy after RL (an export); repeatable")
    parser.add_argument("--reflection", default=None, help="the reflection model's export (none: no reflection)")
    parser.add_argument("--episodes", type=int, default=100)
    args = parser.parse_args(argv)

    datamodule = RolloutDataModule.from_config([args.config])
    start, tokenizer = load_backbone(BackboneSpec(name_or_path=args.start))
    datamodule.bind(tokenizer, examples="rollout")  # the encoder with the config's budgets, as the RL stage has
    encoder = datamodule.encoder
    head = ActionHead(tokenizer, datamodule.max_actions)
    reflector = None
    if args.reflection:
        reflector = Reflector(load_backbone(BackboneSpec(name_or_path=args.reflection))[0].eval(), encoder)
    agent = Agent(start.eval(), head, encoder, reflector)
    envs = datamodule.make_eval_envs("val", min(args.episodes, datamodule.hparams.num_envs))
    results = agent.play(envs, datamodule.eval_seeds("val", args.episodes), datamodule.evaluation_stage, greedy=True)
    turns = [t for r in results for t in r.transcript]
    prompts = [t["extra"]["prompt_ids"] for t in turns]
    oracles = torch.tensor([t["oracle"] for t in turns])
    wrong = torch.tensor([t["recommended"] is not None and t["recommended"] != t["oracle"] for t in turns])

    @torch.no_grad()
    def score(model) -> torch.Tensor:
        width = max(map(len, prompts))
        ids = torch.full((len(prompts), width), encoder.pad_id)
        mask = torch.zeros_like(ids)
        for row, p in enumerate(prompts):
            ids[row, width - len(p) :], mask[row, width - len(p) :] = torch.tensor(p), 1
        counts = torch.tensor([t["num_actions"] for t in turns])
        return torch.cat([head(model.eval(), ids[i : i + 64], mask[i : i + 64], counts[i : i + 64])
                          for i in range(0, len(prompts), 64)])  # fmt: skip

    def describe(name: str, logits: torch.Tensor, reference: torch.Tensor | None) -> str:
        dist = torch.distributions.Categorical(logits=logits)
        oracle = (logits.argmax(-1) == oracles).float().mean()
        line = f"{name:50} entropy {dist.entropy().mean():.3f} nats, p(greedy) {dist.probs.max(-1).values.mean():.3f}"
        line += f", the oracle's action on {oracle:.1%}"
        if reference is not None:
            changed = logits.argmax(-1) != reference.argmax(-1)
            where_wrong = changed[wrong].float().mean() if wrong.any() else 0.0
            line += (
                f", changed {changed.float().mean():.1%} of turns ({where_wrong:.1%} where the reflection was wrong)"
            )
        return line

    before = score(start)
    print(f"{len(turns)} turns of {args.episodes} validation episodes played by the start; "
          f"the reflection was wrong on {wrong.float().mean():.1%} of them")  # fmt: skip
    print(describe(f"start: {args.start}", before, None))
    for path in args.after:
        print(describe(path, score(load_backbone(BackboneSpec(name_or_path=path))[0]), before))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
