"""Stage 3 under Lightning's DDP strategy: two CPU processes (gloo), each with its own environments."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
sys.path[:0] = [{root!r}, {tests!r}]
import lightning as L
from rl_fixtures import data
from lightning_modules import BackboneSpec, ReflectRLModule

class Probe(L.Callback):
    local, logged, seeds = [], [], []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        episodes = batch["episodes"]
        self.seeds += [e.seed for e in episodes]
        self.local.append(sum(e.success for e in episodes) / len(episodes))
        self.logged.append(float(trainer.callback_metrics["rollout/success_rate"]))

    def on_train_end(self, trainer, module):
        metrics = {{k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}}
        record = {{"seeds": self.seeds, "local": self.local, "logged": self.logged, "val": metrics}}
        with open(f"{out}/rank{{trainer.global_rank}}.json", "w") as handle:
            json.dump(record, handle)

module = ReflectRLModule(BackboneSpec(name_or_path={policy!r}), reflection={reflection!r}, val_rollouts=6)
trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=3, val_check_interval=3,
                    limit_val_batches=1, num_sanity_val_steps=0, enable_progress_bar=False,
                    enable_model_summary=False, callbacks=[Probe()],
                    logger=L.pytorch.loggers.TensorBoardLogger({out!r}, name="ddp", version=0))
trainer.fit(module, datamodule=data(episodes_per_step=3, num_envs=3, eval_group_by="dangerous"))
"""


def test_ddp_ranks_play_their_own_episodes_and_sync_metrics(exports, tmp_path):
    reflection, policy = exports
    script = tmp_path / "ddp_fit.py"
    script.write_text(
        textwrap.dedent(
            SCRIPT.format(
                root=str(ROOT),
                tests=str(Path(__file__).parent),
                out=str(tmp_path),
                policy=str(policy),
                reflection=str(reflection),
            )  # fmt: skip
        )
    )
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]

    assert not set(ranks[0]["seeds"]) & set(ranks[1]["seeds"])  # each rank seeds its own environments
    for step, (a, b) in enumerate(zip(ranks[0]["local"], ranks[1]["local"], strict=True)):
        synced = (a + b) / 2  # equal episode counts per rank: the synced mean is the mean of the two
        assert ranks[0]["logged"][step] == pytest.approx(synced) == ranks[1]["logged"][step]

    assert ranks[0]["val"] == ranks[1]["val"] and "val/success_rate" in ranks[0]["val"]
    transcripts = sorted((tmp_path / "ddp" / "version_0" / "transcripts").glob("val_step3_rank*.jsonl"))
    assert [p.name for p in transcripts] == ["val_step3_rank0.jsonl", "val_step3_rank1.jsonl"]
    greedy = [[json.loads(line)["seed"] for line in p.read_text().splitlines() if '"greedy"' in line]
              for p in transcripts]  # fmt: skip
    assert sorted(greedy[0] + greedy[1]) == list(range(1_000_000, 1_000_006)) and not set(greedy[0]) & set(greedy[1])
    wins = sum(json.loads(line)["success"] for p in transcripts for line in p.read_text().splitlines()
               if '"greedy"' in line)  # fmt: skip
    assert ranks[0]["val"]["val/success_rate"] == pytest.approx(wins / 6)
    groups = {k: v for k, v in ranks[0]["val"].items() if k.startswith("val/episodes_dangerous_")}  # greedy + sampled
    assert sum(v for k, v in groups.items() if "sampled" not in k) == 6 and sum(groups.values()) == 12
    assert ranks[0]["val"].get("val/success_rate_dangerous_True", 0.0) == 0.0  # a dangerous move ends in failure
