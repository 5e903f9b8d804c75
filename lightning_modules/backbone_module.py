"""Plumbing shared by the modules that train a backbone: building it, checkpointing it, exporting it."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from datamodules.rollout import EpisodeResult
from lightning_modules.action_head import ActionHead
from lightning_modules.agent import TEACHER, Agent
from lightning_modules.backbone import (
    BackboneSpec,
    LoRASpec,
    TinyGPT2Spec,
    backbone_from_state,
    backbone_state,
    export_backbone,
    load_backbone,
)
from lightning_modules.reflection import Reflector


def _backbone_spec(backbone: BackboneSpec | dict | None) -> BackboneSpec:
    """A :class:`BackboneSpec` from itself, ``None`` (the default) or its plain-data form (a checkpoint's)."""
    if backbone is None or isinstance(backbone, BackboneSpec):
        return backbone or BackboneSpec()
    fields = dict(backbone)
    if isinstance(fields.get("tiny"), dict):
        fields["tiny"] = TinyGPT2Spec(**fields["tiny"])
    if isinstance(fields.get("lora"), dict):
        fields["lora"] = LoRASpec(**fields["lora"])
    return BackboneSpec(**fields)


class BackboneModule(L.LightningModule):
    """Base class: a LightningModule around one Hugging Face causal LM (``self.model``, ``self.tokenizer``).

    The backbone is built in ``setup`` (the embedded tiny default needs the datamodule's environment text for its
    tokenizer), saved with its tokenizer in Lightning checkpoints, and exported as a Hugging Face directory when
    ``fit`` ends (``export_dir``, default ``<log_dir>/export``).
    """

    model: torch.nn.Module | None
    tokenizer: object | None

    def _init_backbone(self, backbone: BackboneSpec | dict | None, export_dir: str | None) -> None:
        # The hyperparameters keep the spec as plain data, so a checkpoint loads with torch.load(weights_only=True).
        self.backbone_spec = _backbone_spec(backbone)
        self.hparams["backbone"] = dataclasses.asdict(self.backbone_spec)
        self.export_dir = export_dir
        self.model = None
        self.tokenizer = None

    def datamodule(self):
        """The trainer's datamodule, which must be a :class:`datamodules.RolloutDataModule`."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None or not hasattr(datamodule, "bind"):
            raise RuntimeError(
                f"{type(self).__name__} needs a RolloutDataModule: pass datamodule=RolloutDataModule(...) to the "
                "Trainer (or a `data:` section to the CLI)."
            )
        return datamodule

    def build_backbone(self) -> None:
        """Load or build the backbone once (a resumed run gets its backbone from the checkpoint)."""
        if self.model is not None:
            return
        spec = self.backbone_spec
        datamodule = self.datamodule()
        self.model, self.tokenizer = load_backbone(spec, lambda: datamodule.sample_texts(spec.tiny.tokenizer_samples))

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]  # frozen players are excluded
        optimizer = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if self.hparams.get("lr_schedule", "constant") == "constant":
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self._cosine(optimizer), "interval": "step"}}

    def _cosine(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        """Linear warm-up over ``warmup_steps``, then cosine decay to 10% of ``lr`` at ``trainer.max_steps``."""
        import math

        total = self.trainer.max_steps
        if total is None or total <= 0:
            raise ValueError("lr_schedule 'cosine' needs trainer.max_steps (the data streams, so epochs never end).")
        warmup = self.hparams.get("warmup_steps", 0)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if not hasattr(self.model, "peft_config"):
            checkpoint["backbone"] = backbone_state(self.model, self.tokenizer)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self.model is None:
            if "backbone" not in checkpoint:
                raise RuntimeError(
                    "This checkpoint holds a LoRA backbone, which is rebuilt from its export: load the exported "
                    "directory with backbone.name_or_path instead."
                )
            self.model, self.tokenizer = backbone_from_state(checkpoint["backbone"])

    def export_path(self) -> Path:
        """Where :meth:`export` writes (``export_dir``, or ``<log_dir>/export``)."""
        if self.export_dir:
            return Path(self.export_dir)
        log_dir = self.trainer.log_dir if self._trainer is not None and self.trainer.log_dir else "."
        return Path(log_dir) / "export"

    def export(self, path: str | Path | None = None) -> Path:
        """Save the model and tokenizer as a Hugging Face directory (LoRA: the adapter, naming its base)."""
        path = export_backbone(self.model, self.tokenizer, path or self.export_path())
        rank_zero_info(f"Exported {type(self).__name__}'s model to {path}")
        return path

    def on_fit_end(self) -> None:
        path = self.export_path()  # on every rank: under DDP, trainer.log_dir is a broadcast
        if self.trainer.is_global_zero:
            self.export(path)

    # -- held-out evaluation: subclasses implement eval_step and eval_epoch_end(split) ---------------------------
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.eval_step(batch, batch_idx)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.eval_step(batch, batch_idx)

    def on_validation_epoch_end(self) -> None:
        self.eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self.eval_epoch_end("test")

    def eval_step(self, batch: Any, batch_idx: int) -> None:
        """Update the held-out metrics with one batch (validation and test alike)."""
        raise NotImplementedError

    def eval_epoch_end(self, split: str) -> None:
        """Log the held-out metrics under ``split/`` (``val`` or ``test``) and reset them."""
        raise NotImplementedError


class ReflectingPolicyModule(BackboneModule):
    """Base class of the policy stages: a trainable policy that reads a frozen reflection model's analyses.

    ``self.reflection`` is the path of a stage-1 export, loaded by :meth:`load_reflection_model`,
    :data:`~lightning_modules.agent.TEACHER` (``"teacher"``: the policy reads the teacher's reflections; which teacher
    wrote the SFT data's is the datamodule's ``teacher`` option, ``"rules"`` or an LLM) or ``None`` (no analysis). The
    frozen model is not part of this module's checkpoints (it is loaded from its export again). :meth:`build_agent`
    puts the two players together as ``self.agent`` (an :class:`Agent`).
    """

    reflection: str | None
    reflection_model: torch.nn.Module | None
    head: ActionHead | None
    agent: Agent | None

    @contextlib.contextmanager
    def full_weights(self) -> Iterator[None]:
        """Gather a sharded (FSDP) policy's full weights while it acts outside the training forward; else a no-op.

        Rollouts call the policy and the reflection model directly, not through the strategy's wrapper, so under FSDP
        their sharded weights must be gathered first (``writeback=False``: acting never changes them).
        """
        from torch.distributed.fsdp import FullyShardedDataParallel

        wrapped = self.trainer.strategy.model if self._trainer is not None else None
        if isinstance(wrapped, FullyShardedDataParallel):
            with FullyShardedDataParallel.summon_full_params(wrapped, writeback=False):
                yield
        else:
            yield

    def play(self, envs, seeds: list[int], stage: str | None, greedy: bool) -> list[EpisodeResult]:
        """Play one episode per seed with the live policy and its reflection model (see :meth:`Agent.play`).

        While the module trains (training rollouts), sampled play explores and thins reflections as the agent is set
        to; held-out play (validation and test put the module in eval mode) never does.
        """
        with self.full_weights():
            return self.agent.play(envs, seeds, stage, greedy, explore=self.training and not greedy)

    def build_agent(
        self, reflection_cache: int = 100_000, explore_reflection_temperature: float = 0.0, **behaviour: Any
    ) -> Agent:
        """Build the action head, load the frozen reflection model, and make ``self.agent`` from them.

        Args:
            reflection_cache: Distinct observations whose greedy reflections are memoised.
            explore_reflection_temperature: Above 0, training rollouts read reflections the frozen model samples at
                this temperature (never cached); 0: its greedy reflections, as held-out play.
            behaviour: The agent's ``reflect_prob``, ``temperature``, ``epsilon`` and ``seed`` (see :class:`Agent`).
        """
        datamodule = self.datamodule()
        self.head = ActionHead(self.tokenizer, datamodule.max_actions)
        self.load_reflection_model()
        reflector: Reflector | str | None = self.reflection
        sampling: Reflector | None = None
        if self.reflection_model is not None:
            reflector = Reflector(self.reflection_model, datamodule.encoder, cache_size=reflection_cache)
            if explore_reflection_temperature > 0:
                temperature = explore_reflection_temperature
                sampling = Reflector(self.reflection_model, datamodule.encoder, do_sample=True, temperature=temperature)
        self.agent = Agent(
            self.model, self.head, datamodule.encoder, reflector, explore_reflector=sampling, **behaviour
        )
        return self.agent

    def load_reflection_model(self) -> None:
        """Load the stage-1 export named by ``self.reflection`` once, frozen, checking that it shares the tokenizer."""
        if self.reflection in (None, TEACHER) or self.reflection_model is not None:
            return
        spec = BackboneSpec(name_or_path=self.reflection, dtype=self.backbone_spec.dtype)
        model, tokenizer = load_backbone(spec, option="reflection")
        if tokenizer.get_vocab() != self.tokenizer.get_vocab():
            raise ValueError(
                f"The reflection model at {self.reflection} has a different tokenizer from the policy at "
                f"{self.backbone_spec.name_or_path}. Start the policy from the reflection export "
                "(backbone.name_or_path) or from a model sharing its tokenizer."
            )
        self.reflection_model = model.requires_grad_(False).eval()

    def state_dict(self, *args, **kwargs):
        return {k: v for k, v in super().state_dict(*args, **kwargs).items() if not k.startswith("reflection_model.")}

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        return super().load_state_dict(state_dict, strict=False, **kwargs)
