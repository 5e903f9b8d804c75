"""The size of the GPU profiles' model: GPT-2 XL's parameters and the share their LoRA adapters train."""

from __future__ import annotations

import yaml

from . import ROOT


def _lora_config(lora: dict):
    """The PEFT config of a backbone's ``lora`` settings, with the defaults the backbone uses."""
    from peft import LoraConfig

    return LoraConfig(
        r=lora.get("r", 16), lora_alpha=lora.get("alpha", 32), lora_dropout=lora.get("dropout", 0.05),
        target_modules=lora.get("target_modules") or ["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True,
    )  # fmt: skip


def gpu_profile_sizes() -> list[tuple[str, int, int]]:
    """``(profile, parameters, trainable parameters)`` of the GPU profiles' GPT-2 XL with their LoRA adapters.

    The model is built on the meta device, so no weights are downloaded or allocated.
    """
    import torch
    from peft import get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    rows = []
    for path in sorted((ROOT / "configs").glob("*/gpu_reflection_sft.yaml")):
        lora = yaml.safe_load(path.read_text())["model"]["init_args"]["backbone"].get("lora") or {}
        with torch.device("meta"):
            model = GPT2LMHeadModel(GPT2Config(n_layer=48, n_embd=1600, n_head=25))  # gpt2-xl's shape
        if lora:
            model = get_peft_model(model, _lora_config(lora))
        total = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        rows.append((str(path.relative_to(ROOT)), total, trainable))
    return rows
