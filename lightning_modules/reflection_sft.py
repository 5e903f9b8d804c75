"""Stage 1: reflection SFT. The reflection model learns to write the teacher's analysis of each state."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import MeanMetric
from torchmetrics.text import Perplexity

from datamodules.encoding import IGNORE_INDEX
from datamodules.prompt import recommended_action
from lightning_modules.action_head import position_ids_for
from lightning_modules.backbone import BackboneSpec
from lightning_modules.backbone_module import BackboneModule
from lightning_modules.reflection import generate_reflections


class ReflectionSFTModule(BackboneModule):
    """Causal-LM fine-tuning on teacher reflections, with the loss on the reflection tokens only.

    Validation reports the loss and perplexity on held-out teacher turns, and, on the first ``generate_samples``
    held-out turns, how often the model's own reflection recommends the same action as the teacher's
    (``val/recommendation_agreement``) and the oracle's (``val/recommendation_accuracy``); a few generated reflections
    are logged next to the teacher's as TensorBoard text.

    Args:
        backbone: The model to train (hub name, local export, or the embedded tiny GPT-2; optionally LoRA).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        lr_schedule: ``"cosine"`` (warm-up, then decay to 10% at ``trainer.max_steps``) or ``"constant"``.
        warmup_steps: Linear warm-up steps of the cosine schedule.
        generate_samples: Held-out turns the model writes reflections for at each validation.
        log_samples: Generated reflections logged as text at each validation.
        export_dir: Where the trained model is exported when ``fit`` ends (default ``<log_dir>/export``).

    Example:
        >>> module = ReflectionSFTModule(BackboneSpec(tiny=TinyGPT2Spec(n_layer=2)))
        >>> Trainer(max_steps=200).fit(module, datamodule=RolloutDataModule(mistake_prob=0.2))
    """

    def __init__(
        self,
        backbone: BackboneSpec | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: str = "cosine",
        warmup_steps: int = 0,
        generate_samples: int = 64,
        log_samples: int = 4,
        export_dir: str | None = None,
    ) -> None:
        super().__init__()
        if lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}.")
        self.save_hyperparameters()
        self._init_backbone(backbone, export_dir)
        self.val_loss = MeanMetric()
        self.val_perplexity = Perplexity(ignore_index=IGNORE_INDEX)
        self.val_agreement = MeanMetric()
        self.val_accuracy = MeanMetric()

    def setup(self, stage: str) -> None:
        self.build_backbone()
        self.datamodule().bind(self.tokenizer, examples="reflection", chat_template=self.backbone_spec.chat_template)

    def forward(self, batch: dict[str, Any]) -> Any:
        mask = batch["attention_mask"]
        return self.model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=position_ids_for(mask))

    def shared_step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the loss on reflection tokens and the logits aligned with the next-token labels."""
        logits = self(batch).logits[:, :-1]
        labels = batch["labels"][:, 1:]
        loss = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX
        )
        return loss, logits

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _ = self.shared_step(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["turns"]))
        return loss

    def eval_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Loss and perplexity on held-out teacher reflections; the model's own reflections on the first turns."""
        loss, logits = self.shared_step(batch)
        self.val_loss.update(loss, weight=len(batch["turns"]))
        self.val_perplexity.update(logits.float(), batch["labels"][:, 1:])
        seen = batch_idx * len(batch["turns"])
        turns = batch["turns"][: max(0, self.hparams.generate_samples - seen)]
        if not turns:
            return
        encoder = self.datamodule().encoder
        generated = generate_reflections(self.model, encoder, [t.observation for t in turns])
        for turn, text in zip(turns, generated, strict=True):
            ours = recommended_action(text, turn.actions)
            self.val_agreement.update(float(ours == recommended_action(turn.reflection, turn.actions)))
            self.val_accuracy.update(float(ours == turn.oracle))
        if batch_idx == 0:
            count = self.hparams.log_samples
            self._log_samples(turns[:count], generated[:count])

    def eval_epoch_end(self, split: str) -> None:
        """Log the held-out metrics under ``split/`` and reset them."""
        self.log(f"{split}/loss", self.val_loss.compute(), prog_bar=True)
        self.log(f"{split}/perplexity", self.val_perplexity.compute())
        if self.val_agreement.update_count:
            self.log(f"{split}/recommendation_agreement", self.val_agreement.compute(), prog_bar=True)
            self.log(f"{split}/recommendation_accuracy", self.val_accuracy.compute())
        for metric in (self.val_loss, self.val_perplexity, self.val_agreement, self.val_accuracy):
            metric.reset()

    def _log_samples(self, turns, generated: list[str]) -> None:
        experiment = getattr(self.logger, "experiment", None)
        if experiment is None or not hasattr(experiment, "add_text"):
            return
        rows = [
            f"**observation**\n\n    {t.observation.replace(chr(10), chr(10) + '    ')}\n\n"
            f"**teacher**: {t.reflection}\n\n**model**: {g}"
            for t, g in zip(turns, generated, strict=True)
        ]
        experiment.add_text(
            f"{'test' if self.trainer.testing else 'val'}/reflections",
            "\n\n---\n\n".join(rows),
            global_step=self.global_step,
        )
