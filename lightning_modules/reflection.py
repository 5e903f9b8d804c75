"""The reflection player: batched generation of analyses with the KV cache, stopping at the section marker."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from datamodules.encoding import PromptEncoder
from datamodules.prompt import ACTIONS_MARKER


def stop_token_ids(tokenizer) -> list[int] | None:
    """Token ids that end a reflection when the end marker is a single token (the embedded tokenizer), else None."""
    ids = tokenizer(ACTIONS_MARKER, add_special_tokens=False)["input_ids"]
    return [ids[0], tokenizer.eos_token_id] if len(ids) == 1 else None


@torch.no_grad()
def generate_reflections(
    model: nn.Module,
    encoder: PromptEncoder,
    observations: Sequence[str],
    do_sample: bool = False,
    temperature: float = 1.0,
) -> list[str]:
    """Write one reflection per observation in one batched ``generate`` call (left padding, KV cache).

    Generation stops at ``# Actions:`` (the marker that follows a reflection in the prompt) or after
    ``encoder.max_reflection_tokens`` tokens.

    Args:
        model: The reflection model (a causal LM).
        encoder: The prompt encoder holding the tokenizer and budgets.
        observations: One observation per reflection.
        do_sample: Sample instead of greedy decoding.
        temperature: Sampling temperature.
    """
    if not observations:
        return []
    tokenizer = encoder.tokenizer
    batch = encoder.reflection_prompt_batch(observations)
    device = next(model.parameters()).device
    input_ids, attention_mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    stops = stop_token_ids(tokenizer)
    kwargs = {"eos_token_id": stops} if stops else {"stop_strings": [ACTIONS_MARKER], "tokenizer": tokenizer}
    if do_sample:
        kwargs.update(do_sample=True, temperature=temperature, top_k=0)
    else:
        kwargs.update(do_sample=False)
    was_training = model.training
    model.eval()
    output = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        max_new_tokens=encoder.max_reflection_tokens,
        pad_token_id=encoder.pad_id,
        use_cache=True,
        **kwargs,
    )
    model.train(was_training)
    return encoder.decode_reflections(output[:, input_ids.shape[1] :])
