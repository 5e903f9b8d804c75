"""The reflection player: batched generation of analyses with the KV cache, stopping at the section marker."""

from __future__ import annotations

from collections import OrderedDict
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

    Returns:
        One reflection text per observation, without the end marker.

    Example:
        >>> model, tokenizer = load_backbone(BackboneSpec(name_or_path="runs/taxi/reflection_sft/export"))
        >>> generate_reflections(model, PromptEncoder(tokenizer), [observation], do_sample=True, temperature=0.7)
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


class Reflector:
    """The frozen reflection player: writes one analysis per observation, batched and KV-cached, and memoised.

    Greedy reflections of a frozen model depend on the observation alone, so each distinct observation is generated
    once and then served from an LRU cache (exact, not an approximation: DangerousTaxi has a few thousand distinct
    observations, and an RLFT run revisits them constantly). With ``do_sample=True`` nothing is cached.

    Args:
        model: The reflection model (frozen by the caller).
        encoder: The prompt encoder holding the tokenizer and budgets.
        cache_size: Distinct observations remembered (0 disables the cache).
        do_sample: Sample reflections instead of decoding greedily.
        temperature: Sampling temperature.

    Example:
        >>> reflector = Reflector(model, PromptEncoder(tokenizer))
        >>> reflector(["Taxi at row 4, column 0. ..."])  # one reflection per observation
    """

    def __init__(
        self,
        model: nn.Module,
        encoder: PromptEncoder,
        cache_size: int = 100_000,
        do_sample: bool = False,
        temperature: float = 1.0,
    ) -> None:
        self.model, self.encoder = model, encoder
        self.cache_size = 0 if do_sample else cache_size
        self.do_sample, self.temperature = do_sample, temperature
        self._cache: OrderedDict[str, str] = OrderedDict()
        self.hits = 0
        self.generated = 0

    def __call__(self, observations: Sequence[str]) -> list[str]:
        """Return one reflection per observation, generating (in one batched call) only those not cached."""
        if self.cache_size <= 0:
            self.generated += len(observations)
            return generate_reflections(self.model, self.encoder, observations, self.do_sample, self.temperature)
        missing = list(dict.fromkeys(o for o in observations if o not in self._cache))
        self.hits += len(observations) - len(missing)
        self.generated += len(missing)
        written = generate_reflections(self.model, self.encoder, missing)
        for observation, reflection in zip(missing, written, strict=True):
            self._cache[observation] = reflection
        result = []
        for observation in observations:
            self._cache.move_to_end(observation)
            result.append(self._cache[observation])
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return result

    def clear(self) -> None:
        """Forget the cached reflections (needed only if the model's weights change)."""
        self._cache.clear()
