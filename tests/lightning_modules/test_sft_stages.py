"""A few steps of each SFT stage through the CLI, with every shipped config parsed."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lightning_modules.lightning_cli import run_lightning_cli

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = sorted((ROOT / "configs" / "strategies").glob("*.yaml"))
#: The stage configs (not the SFT stages' shared data sections, ``sft_data.yaml``, which are no config of their own).
CONFIGS = sorted(set(ROOT.glob("configs/**/*.yaml")) - set(STRATEGIES) - set(ROOT.glob("configs/**/*sft_data.yaml")))
TINY = [
    "--model.init_args.backbone.tiny.n_layer=1",
    "--model.init_args.backbone.tiny.n_embd=32",
    "--model.init_args.backbone.tiny.n_head=2",
    "--model.init_args.backbone.tiny.vocab_size=400",
    "--model.init_args.backbone.tiny.tokenizer_samples=20",
]


def small_run(config: Path, tmp_path: Path, name: str, *extra: str) -> list[str]:
    return [
        "fit",
        "--config",
        str(config),
        "--trainer.max_steps=3",
        "--trainer.val_check_interval=3",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        f"--model.init_args.export_dir={tmp_path / name}",
        "--data.num_envs=2",
        "--data.batch_size=4",
        "--data.val_episodes=2",
        "--data.max_reflection_tokens=12",
        *extra,
    ]


@pytest.mark.parametrize("config", CONFIGS, ids=[f"{c.parent.name}/{c.name}" for c in CONFIGS])
def test_every_shipped_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_lightning_cli(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code == 0
    assert "class_path: lightning_modules." in capsys.readouterr().out


@pytest.mark.parametrize("strategy", STRATEGIES, ids=[c.name for c in STRATEGIES])
def test_strategy_configs_parse_on_top_of_a_gpu_stage(strategy, capsys):
    stage = ROOT / "configs" / "dangerous_taxi" / "gpu_reflect_rl.yaml"
    with pytest.raises(SystemExit) as exit_info:
        run_lightning_cli(["fit", "--config", str(stage), "--config", str(strategy), "--print_config"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "ReflectRLModule" in out and strategy.stem in out.lower()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--trainer.accelerator=gpu"], "has no CUDA GPU"),
        (["--trainer.strategy=fsdp"], "requires a GPU accelerator"),
        (["--trainer.strategy=deepspeed"], "DeepSpeed installed"),
        (["--model.init_args.reflection=/nowhere/export"], "/nowhere/export does not exist"),
    ],
)
def test_what_cannot_run_here_is_a_one_line_error_before_training(override, message, exports, tmp_path, capsys):
    from lightning_modules.cli import main

    config = ROOT / "configs" / "dangerous_taxi" / "reflect_rl.yaml"
    code = main(["fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={tmp_path}",
                 f"--model.init_args.backbone.name_or_path={exports[1]}", f"--model.init_args.reflection={exports[0]}",
                 *override])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err
    assert not list(tmp_path.rglob("*.ckpt"))


def test_reflection_then_policy_sft_run_export_and_chain(tmp_path):
    config_dir = Path(__file__).resolve().parents[2] / "configs" / "dangerous_taxi"
    cli = run_lightning_cli(
        small_run(
            config_dir / "reflection_sft.yaml", tmp_path, "reflection", *TINY, "--model.init_args.generate_samples=2"
        )
    )
    metrics = cli.trainer.callback_metrics
    assert cli.trainer.global_step == 3
    assert {"train/loss", "val/loss", "val/perplexity", "val/recommendation_agreement"} <= set(metrics)
    assert "train/negative_share" in metrics
    reflection = tmp_path / "reflection"
    tokenizer = AutoTokenizer.from_pretrained(reflection)
    AutoModelForCausalLM.from_pretrained(reflection)
    logs = list(tmp_path.rglob("events.out.tfevents.*"))
    assert logs, "TensorBoard logs are written under the run directory"

    cli = run_lightning_cli(
        small_run(
            config_dir / "policy_sft.yaml",
            tmp_path,
            "policy",
            f"--model.init_args.backbone.name_or_path={reflection}",
            f"--model.init_args.reflection={reflection}",
            "--model.init_args.val_rollouts=2",
        )
    )
    metrics = cli.trainer.callback_metrics
    assert {"train/loss", "val/accuracy", "val/success_rate"} <= set(metrics)
    module = cli.model
    assert module.reflection_model is not None
    assert not any(p.requires_grad for p in module.reflection_model.parameters())
    optimized = {id(p) for group in cli.trainer.optimizers[0].param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in module.reflection_model.parameters()}
    assert AutoTokenizer.from_pretrained(tmp_path / "policy").get_vocab() == tokenizer.get_vocab()
    assert json.loads((tmp_path / "policy" / "config.json").read_text())["n_layer"] == 1
    assert torch.isfinite(metrics["val/loss"])

    policy = tmp_path / "policy"
    cli = run_lightning_cli(
        [
            "test", "--config", str(config_dir / "policy_sft.yaml"),
            f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.enable_progress_bar=false",
            f"--model.init_args.backbone.name_or_path={policy}", f"--model.init_args.reflection={reflection}",
            "--model.init_args.val_rollouts=2", "--data.num_envs=2", "--data.test_episodes=2",
            "--data.max_reflection_tokens=12",
        ]
    )  # fmt: skip
    assert {"test/accuracy", "test/success_rate"} <= set(cli.trainer.callback_metrics)


def test_missing_export_is_a_clear_error(tmp_path):
    config = Path(__file__).resolve().parents[2] / "configs" / "dangerous_taxi" / "policy_sft.yaml"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_lightning_cli(small_run(config, tmp_path, "p", f"--model.init_args.backbone.name_or_path={tmp_path}/nope"))


def test_auto_explore_stages_run_on_held_out_packages(tmp_path):
    config_dir = Path(__file__).resolve().parents[2] / "configs" / "auto_explore"
    tasks = [
        "--data.env_kwargs.tasks={'packages': ['jsonargparse'], 'max_tasks': 10}",
        "--data.val_env_kwargs.tasks={'packages': ['gymnasium'], 'max_tasks': 10}",
    ]
    cli = run_lightning_cli(
        small_run(
            config_dir / "reflection_sft.yaml",
            tmp_path,
            "reflection",
            *TINY,
            *tasks,
            "--model.init_args.generate_samples=2",
        )
    )
    assert cli.trainer.global_step == 3
    train_roots = {Path(t.root).name for t in cli.datamodule.make_eval_envs("val", 1)[0].unwrapped.tasks}
    assert train_roots == {"gymnasium"}  # validation plays the held-out package's tasks
    reflection = tmp_path / "reflection"
    cli = run_lightning_cli(
        small_run(
            config_dir / "policy_sft.yaml",
            tmp_path,
            "policy",
            *tasks,
            f"--model.init_args.backbone.name_or_path={reflection}",
            f"--model.init_args.reflection={reflection}",
            "--model.init_args.val_rollouts=2",
        )
    )
    assert {"val/accuracy", "val/success_rate"} <= set(cli.trainer.callback_metrics)
