"""Single-prompt action enumeration: every admissible action scored in one forward pass.

The policy's prompt ends with ``# Action:`` after a labelled list of the admissible actions; the next token is the
label of the chosen action. :class:`ActionHead` reads the logits of the label tokens at the last prompt position and
masks them to the admissible count, giving a categorical distribution over the actions. No per-action scoring, no
free-form generation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from datamodules.prompt import format_action_answer


def position_ids_for(attention_mask: Tensor) -> Tensor:
    """Positions that ignore left padding, so a prompt scores the same whatever batch it is in."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class ActionHead(nn.Module):
    """Turns a causal LM into a policy over labelled actions.

    Args:
        tokenizer: The policy's tokenizer; every label it will need (`` A``, `` B``, ...) must be one token.
        max_actions: The most admissible actions a decision can have (the environment's action space size).

    Raises:
        ValueError: if a label is not a single token of ``tokenizer``.

    Example:
        >>> head = ActionHead(tokenizer, max_actions=6)
        >>> logits = head(model, input_ids, attention_mask, num_actions)  # [batch, 6], -inf past num_actions
        >>> actions = torch.distributions.Categorical(logits=logits).sample()
    """

    def __init__(self, tokenizer, max_actions: int) -> None:
        super().__init__()
        labels = [format_action_answer(index) for index in range(max_actions)]
        pieces = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in labels]
        split = [index for index, ids in enumerate(pieces) if len(ids) != 1]
        if split:
            named = ", ".join(f"{labels[i]!r} is {len(pieces[i])} tokens" for i in split)
            raise ValueError(
                f"Action labels that are not single tokens in this tokenizer: {named}; so {max_actions} actions "
                f"cannot be scored in one pass (it supports {split[0]} actions). Use fewer actions (max_actions), the "
                "embedded tokenizer with more labels (tiny.num_labels), or a model whose tokenizer has these labels "
                "as single tokens."
            )
        ids = [row[0] for row in pieces]
        self.max_actions = max_actions
        self.register_buffer("label_ids", torch.tensor(ids, dtype=torch.long), persistent=False)

    def forward(self, model: nn.Module, input_ids: Tensor, attention_mask: Tensor, num_actions: Tensor) -> Tensor:
        """Return masked label logits ``[batch, max_actions]`` (``-inf`` for labels past each row's ``num_actions``).

        Args:
            model: A causal LM (Hugging Face, optionally peft-wrapped).
            input_ids: Left-padded prompts ``[batch, length]``, each ending right after ``# Action:``.
            attention_mask: ``1`` on real tokens.
            num_actions: Admissible actions per row ``[batch]``.
        """
        return self.scores(model, input_ids, attention_mask, num_actions)[0]

    def scores(
        self, model: nn.Module, input_ids: Tensor, attention_mask: Tensor, num_actions: Tensor, hidden: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """Masked label logits and, with ``hidden=True``, the last layer's hidden state at the last position.

        The hidden state ``[batch, hidden_size]`` comes from the same forward pass (a value head reads it).
        """
        if int(num_actions.max()) > self.max_actions:
            raise ValueError(f"{int(num_actions.max())} admissible actions but the head has {self.max_actions} labels.")
        output = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids_for(attention_mask),
            logits_to_keep=1,
            use_cache=False,
            output_hidden_states=hidden,
        )
        logits = output.logits[:, -1, :]
        label_logits = logits.index_select(-1, self.label_ids).float()
        admissible = torch.arange(self.max_actions, device=logits.device) < num_actions.unsqueeze(-1)
        last_hidden = output.hidden_states[-1][:, -1, :] if hidden else None
        return label_logits.masked_fill(~admissible, float("-inf")), last_hidden

    def distribution(self, model: nn.Module, input_ids: Tensor, attention_mask: Tensor, num_actions: Tensor):
        """The categorical distribution over each row's admissible actions."""
        return torch.distributions.Categorical(logits=self(model, input_ids, attention_mask, num_actions))
