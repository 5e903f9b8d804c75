"""Tokenisation of prompts into model batches, shared by every stage so that training and acting see the same ids.

Prompts are truncated from the left to a token budget (the end of a prompt is what the model must act on) and padded
on the left, so the last position of every row is the position the model predicts from.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from datamodules.prompt import ACTIONS_MARKER, format_policy_prompt, format_reflection_prompt

IGNORE_INDEX = -100


def chat_prompt(tokenizer, prompt: str) -> str:
    r"""Wrap a prompt in ``tokenizer``'s chat template, keeping where it ends.

    Everything before the prompt's last line becomes the user's message; the last line (the section marker the
    model answers after, ``# Action:`` or ``# Analyze:``) opens the assistant's turn. A policy prompt therefore still
    ends with ``# Action:`` (the position the action head reads) and a reflection prompt with ``# Analyze:`` and a
    newline (where generation starts).

    Example:
        >>> chat_prompt(tokenizer, "Taxi at row 3.\n# Actions:\nA. go south\n# Action:")
        '<|im_start|>user\nTaxi at row 3.\n# Actions:\nA. go south<|im_end|>\n<|im_start|>assistant\n# Action:'
    """
    end = len(prompt.rstrip("\n"))
    split = prompt.rfind("\n", 0, end)
    message, opening = prompt[: max(split, 0)], prompt[split + 1 :]
    messages = [{"role": "user", "content": message}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + opening


class PromptEncoder:
    """Turns text turns into left-padded tensors for the policy and the reflection model.

    Args:
        tokenizer: A Hugging Face tokenizer (fast).
        max_prompt_tokens: Budget of a policy prompt; longer prompts lose their beginning.
        max_reflection_tokens: Budget of a reflection (SFT targets are cut to it; generation stops at it).
        max_reflection_prompt_tokens: Budget of a reflection prompt, what the reflection model reads (in reflection
            SFT examples and when it generates); longer ones lose their beginning. ``None``: ``max_prompt_tokens``.
        chat_template: Wrap policy and reflection prompts in the tokenizer's chat template (:func:`chat_prompt`);
            the budgets count the template's tokens too.

    Example:
        >>> encoder = PromptEncoder(tokenizer, max_prompt_tokens=256, max_reflection_tokens=96,
        ...                         max_reflection_prompt_tokens=128)
        >>> batch = encoder.policy_batch([observation], [info["actions"]], [reflection], targets=[1])
        >>> batch["input_ids"].shape, batch["num_actions"]  # [1, prompt length], tensor([6])
        >>> sft = encoder.reflection_batch([observation], [reflection])  # input_ids, attention_mask, labels
    """

    def __init__(
        self,
        tokenizer,
        max_prompt_tokens: int = 256,
        max_reflection_tokens: int = 96,
        max_reflection_prompt_tokens: int | None = None,
        chat_template: bool = False,
    ) -> None:
        if chat_template and not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "backbone.chat_template is true but the model's tokenizer has no chat template: set it to false, or "
                "use an instruct model that ships one."
            )
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.max_prompt_tokens = max_prompt_tokens
        self.max_reflection_tokens = max_reflection_tokens
        self.max_reflection_prompt_tokens = max_reflection_prompt_tokens
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        #: The text a reflection ends with; generation stops once it appears.
        self.reflection_end = "\n" + ACTIONS_MARKER

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def _prompt_ids(self, prompts: Sequence[str]) -> list[list[int]]:
        """Token ids of prompts, wrapped in the chat template when it is on (the one place that wraps)."""
        if self.chat_template:
            prompts = [chat_prompt(self.tokenizer, prompt) for prompt in prompts]
        return self._ids(prompts)

    def _left_pad(self, rows: Sequence[Sequence[int]], fill: int) -> tuple[Tensor, Tensor]:
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), fill, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            if row:
                ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
                mask[i, width - len(row) :] = 1
        return ids, mask

    @property
    def reflection_prompt_budget(self) -> int:
        """The budget reflection prompts are cut to: ``max_reflection_prompt_tokens``, else ``max_prompt_tokens``."""
        if self.max_reflection_prompt_tokens is None:
            return self.max_prompt_tokens
        return self.max_reflection_prompt_tokens

    def truncate(self, ids: list[int], budget: int | None = None) -> list[int]:
        """Keep the last ``budget`` (default: ``max_prompt_tokens``) tokens."""
        budget = self.max_prompt_tokens if budget is None else budget
        return ids[-budget:] if len(ids) > budget else ids

    def _reflection_prompts(self, observations: Sequence[str]) -> list[list[int]]:
        budget = self.reflection_prompt_budget
        prompts = [format_reflection_prompt(o) for o in observations]
        return [self.truncate(ids, budget) for ids in self._prompt_ids(prompts)]

    def policy_batch(
        self,
        observations: Sequence[str],
        actions: Sequence[Sequence[str]],
        reflections: Sequence[str | None] | None = None,
        targets: Sequence[int] | None = None,
    ) -> dict[str, Tensor]:
        """Encode policy prompts (ending at ``# Action:``).

        Returns:
            ``input_ids``, ``attention_mask``, ``num_actions`` and, with ``targets``, ``targets`` (label indices).
        """
        reflections = reflections if reflections is not None else [None] * len(observations)
        prompts = [format_policy_prompt(o, a, r) for o, a, r in zip(observations, actions, reflections, strict=True)]
        rows = [self.truncate(ids) for ids in self._prompt_ids(prompts)]
        input_ids, attention_mask = self._left_pad(rows, self.pad_id)
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "num_actions": torch.tensor([len(a) for a in actions], dtype=torch.long),
        }
        if targets is not None:
            batch["targets"] = torch.tensor(list(targets), dtype=torch.long)
        return batch

    def reflection_prompt_batch(self, observations: Sequence[str]) -> dict[str, Tensor]:
        """Encode reflection prompts (ending at ``# Analyze:`` and a newline) for generation."""
        rows = self._reflection_prompts(observations)
        input_ids, attention_mask = self._left_pad(rows, self.pad_id)
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def reflection_batch(self, observations: Sequence[str], reflections: Sequence[str]) -> dict[str, Tensor]:
        """Encode reflection SFT examples: prompt + reflection + end marker, loss on the reflection and marker only.

        Returns:
            ``input_ids``, ``attention_mask`` and ``labels`` (``-100`` on prompt and padding).
        """
        prompts = self._reflection_prompts(observations)
        completions = self._ids([r.strip() + self.reflection_end for r in reflections])
        end_ids = self._ids([self.reflection_end])[0]
        rows, labels = [], []
        for prompt, completion in zip(prompts, completions, strict=True):
            if len(completion) > self.max_reflection_tokens:  # cut the reflection, keep the end marker
                completion = completion[: self.max_reflection_tokens - len(end_ids)] + end_ids
            rows.append(prompt + completion)
            labels.append([IGNORE_INDEX] * len(prompt) + completion)
        input_ids, attention_mask = self._left_pad(rows, self.pad_id)
        label_ids, _ = self._left_pad(labels, IGNORE_INDEX)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": label_ids}

    def decode_reflections(self, generated: Tensor) -> list[str]:
        """Decode generated continuations into reflection texts (cut at the end marker)."""
        texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        marker = ACTIONS_MARKER
        return [text.split(marker, 1)[0].strip() for text in texts]
