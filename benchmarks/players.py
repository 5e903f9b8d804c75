"""The two players the speed benchmarks run: trained exports, or untrained embedded tiny GPT-2s of the same size."""

from __future__ import annotations

import torch

from datamodules import RolloutDataModule
from lightning_modules import BackboneSpec, TinyGPT2Spec, load_backbone


def load_players(
    reflection: str | None, policy: str | None, env_id: str, env_kwargs: dict, tiny: TinyGPT2Spec, samples: int
):
    """``(reflection model, policy, tokenizer, description)`` in eval mode.

    With both export directories given, they are loaded; otherwise a fresh tiny GPT-2 of ``tiny``'s size is built
    (its tokenizer trained on ``samples`` texts of the environment) and the policy is a copy of it.
    """
    if reflection and policy:
        reflection_model, tokenizer = load_backbone(BackboneSpec(name_or_path=reflection))
        policy_model, _ = load_backbone(BackboneSpec(name_or_path=policy))
        return reflection_model.eval(), policy_model.eval(), tokenizer, f"the exports {reflection} and {policy}"
    torch.manual_seed(0)
    datamodule = RolloutDataModule(env_id, env_kwargs, num_envs=2)
    reflection_model, tokenizer = load_backbone(BackboneSpec(tiny=tiny), lambda: datamodule.sample_texts(samples))
    policy_model = type(reflection_model)(reflection_model.config)
    policy_model.load_state_dict(reflection_model.state_dict())
    description = f"untrained embedded tiny GPT-2s ({tiny.n_layer} layers x {tiny.n_embd})"
    return reflection_model.eval(), policy_model.eval(), tokenizer, description
