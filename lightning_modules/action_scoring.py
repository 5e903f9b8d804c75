"""Per-action scoring: the two alternatives to single-prompt enumeration, kept for benchmarks and tests.

Methods like GLAM (with lamorel) do not list the actions in the prompt. They score each admissible action ``a`` by
its log-likelihood as a continuation of the context, ``log p(a | context) = sum_t log p(a_t | context, a_<t)``, and
the policy is the softmax of these scores over the actions. The context is the policy prompt without the labelled
list (:func:`per_action_context`). Two ways to compute the scores:

* :func:`naive_action_scores`: one sequence ``context + action`` per (decision, action), one forward pass over all of
  them; the context is encoded once per action.
* :func:`cached_action_scores` (lamorel's strongest way): encode each decision's context once, copy its KV cache
  (``past_key_values``) to each of its actions, and run only the action tokens on it.

Both return the per-action scores ``[batch, max_actions]`` with ``-inf`` past each decision's admissible count, like
:class:`~lightning_modules.action_head.ActionHead`'s logits, so ``Categorical(logits=scores)`` is the policy. They
give the same numbers up to float rounding. Token ids are prepared once with :func:`encode_per_action` (rollouts keep
ids; nothing is re-tokenised in the hot path).

Example:
    >>> batch = encode_per_action(tokenizer, [per_action_context(observation, reflection)], [info["actions"]])
    >>> scores = cached_action_scores(model, batch)  # [1, len(info["actions"])]
    >>> policy = torch.distributions.Categorical(logits=scores)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn

from datamodules.prompt import format_scoring_context
from lightning_modules.action_head import position_ids_for


def per_action_context(observation: str, reflection: str | None = None) -> str:
    """Return the context per-action scoring continues: the policy prompt without the labelled action list.

    The layout is that of :func:`datamodules.prompt.format_policy_prompt` with the ``# Actions:`` section left out
    (:func:`datamodules.prompt.format_scoring_context`, which owns it); each action is scored as the continuation
    :func:`action_continuation`.
    """
    return format_scoring_context(observation, reflection)


def action_continuation(action: str) -> str:
    """Return the text whose likelihood after the context scores ``action`` (a space and the action's text)."""
    return " " + action.strip()


@dataclass
class PerActionBatch:
    """Token ids of a batch of decisions for per-action scoring, flattened to one row per (decision, action) pair.

    Attributes:
        context_ids: Left-padded contexts ``[batch, context_length]``.
        context_mask: ``1`` on real context tokens.
        action_ids: Right-padded action continuations ``[pairs, action_length]``, one row per admissible action of
            every decision, decision by decision.
        action_mask: ``1`` on real action tokens (each row has at least one).
        decision: The decision (row of ``context_ids``) each pair belongs to ``[pairs]``.
        slot: The action's index within its decision ``[pairs]``.
        num_actions: Admissible actions per decision ``[batch]``.
    """

    context_ids: Tensor
    context_mask: Tensor
    action_ids: Tensor
    action_mask: Tensor
    decision: Tensor
    slot: Tensor
    num_actions: Tensor

    @property
    def max_actions(self) -> int:
        """The most admissible actions of a decision in this batch (width of the score tensors)."""
        return int(self.num_actions.max())

    def to(self, device: torch.device | str) -> PerActionBatch:
        """Return the batch with every tensor on ``device``."""
        return PerActionBatch(*(getattr(self, f.name).to(device) for f in fields(self)))


def collate_per_action(
    context_ids: Sequence[Sequence[int]], action_ids: Sequence[Sequence[Sequence[int]]], pad_id: int
) -> PerActionBatch:
    """Pad pre-tokenised contexts (on the left) and actions (on the right) into a :class:`PerActionBatch`.

    Args:
        context_ids: One token-id list per decision.
        action_ids: Per decision, one non-empty token-id list per admissible action.
        pad_id: The padding token id.

    Raises:
        ValueError: for a decision without actions or an action without tokens.
    """
    if len(context_ids) != len(action_ids):
        raise ValueError(f"{len(context_ids)} contexts but {len(action_ids)} action lists.")
    if any(len(actions) == 0 for actions in action_ids):
        raise ValueError("Every decision needs at least one admissible action.")
    pairs = [ids for actions in action_ids for ids in actions]
    if any(len(ids) == 0 for ids in pairs):
        raise ValueError("Every action must be at least one token.")
    batch, context_length = len(context_ids), max(len(ids) for ids in context_ids)
    contexts = torch.full((batch, context_length), pad_id, dtype=torch.long)
    context_mask = torch.zeros((batch, context_length), dtype=torch.long)
    for row, ids in enumerate(context_ids):
        if ids:
            contexts[row, -len(ids) :] = torch.tensor(ids, dtype=torch.long)
            context_mask[row, -len(ids) :] = 1
    action_length = max(len(ids) for ids in pairs)
    actions = torch.full((len(pairs), action_length), pad_id, dtype=torch.long)
    action_mask = torch.zeros((len(pairs), action_length), dtype=torch.long)
    for row, ids in enumerate(pairs):
        actions[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        action_mask[row, : len(ids)] = 1
    num_actions = torch.tensor([len(a) for a in action_ids], dtype=torch.long)
    decision = torch.repeat_interleave(torch.arange(batch), num_actions)
    slot = torch.cat([torch.arange(int(n)) for n in num_actions])
    return PerActionBatch(contexts, context_mask, actions, action_mask, decision, slot, num_actions)


def encode_per_action(tokenizer, contexts: Sequence[str], actions: Sequence[Sequence[str]]) -> PerActionBatch:
    """Tokenise contexts and action continuations separately (as lamorel does) and collate them.

    Args:
        tokenizer: The policy's tokenizer.
        contexts: One context per decision (:func:`per_action_context`).
        actions: Per decision, the admissible action texts (``info["actions"]``).
    """
    context_ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in contexts]
    action_ids = [
        [tokenizer(action_continuation(a), add_special_tokens=False)["input_ids"] for a in texts] for texts in actions
    ]
    return collate_per_action(context_ids, action_ids, tokenizer.pad_token_id)


def _scatter_scores(batch: PerActionBatch, pair_scores: Tensor) -> Tensor:
    """Place one score per pair into ``[batch, max_actions]``, ``-inf`` where a decision has fewer actions."""
    scores = pair_scores.new_full((batch.num_actions.numel(), batch.max_actions), float("-inf"))
    scores[batch.decision, batch.slot] = pair_scores
    return scores


def _token_log_likelihood(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Sum of ``log_softmax(logits)[target]`` where ``mask`` is set: ``[rows, length, vocab] -> [rows]``."""
    log_probs = logits.float().log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return log_probs.masked_fill(mask == 0, 0.0).sum(-1)


def _dynamic_cache(layers: list[tuple[Tensor, Tensor]]):
    """A Hugging Face ``DynamicCache`` holding ``(keys, values)`` per layer (transformers 4.x and 5.x)."""
    from transformers import DynamicCache

    if hasattr(DynamicCache, "from_legacy_cache"):
        return DynamicCache.from_legacy_cache(tuple(layers))
    return DynamicCache(layers)


def _rows_per_pass(rows: int, row_length: int, max_tokens: int | None) -> int:
    """Rows per forward pass so that ``rows x row_length`` stays within ``max_tokens`` (at least one row)."""
    return rows if max_tokens is None else max(1, min(rows, max_tokens // max(row_length, 1)))


def naive_action_scores(model: nn.Module, batch: PerActionBatch, max_tokens: int | None = None) -> Tensor:
    """Score every action with its own ``context + action`` sequence (no cache): lamorel/GLAM without pre-encoding.

    The sequences of all (decision, action) pairs go through the model, in passes of at most ``max_tokens`` tokens
    (lamorel's minibatches) if given. Only the positions that predict action tokens are projected onto the
    vocabulary, and positions ignore padding, so a decision's scores do not depend on the batch.

    Args:
        model: A causal LM (Hugging Face, optionally peft-wrapped).
        batch: Token ids from :func:`encode_per_action` or :func:`collate_per_action`.
        max_tokens: Bound on sequences x padded length per forward pass (``None``: all sequences in one pass).

    Returns:
        ``[batch, max_actions]`` summed log-likelihoods of the actions, ``-inf`` past each ``num_actions``.
    """
    action_length = batch.action_ids.shape[1]
    # The last action token is only predicted, never read: feed context + action[:-1], read the last action_length.
    inputs = torch.cat([batch.context_ids[batch.decision], batch.action_ids[:, :-1]], dim=1)
    mask = torch.cat([batch.context_mask[batch.decision], batch.action_mask[:, :-1]], dim=1)
    positions = position_ids_for(mask)
    chunk = _rows_per_pass(inputs.shape[0], inputs.shape[1], max_tokens)
    pair_scores = []
    for start in range(0, inputs.shape[0], chunk):
        rows = slice(start, start + chunk)
        logits = model(
            input_ids=inputs[rows],
            attention_mask=mask[rows],
            position_ids=positions[rows],
            logits_to_keep=action_length,
            use_cache=False,
        ).logits
        pair_scores.append(_token_log_likelihood(logits, batch.action_ids[rows], batch.action_mask[rows]))
    return _scatter_scores(batch, torch.cat(pair_scores))


def cached_action_scores(model: nn.Module, batch: PerActionBatch, max_tokens: int | None = None) -> Tensor:
    """Score every action on its decision's cached context: lamorel's pre-encoded scoring.

    One forward pass encodes the contexts and keeps their KV cache; the logits at each context's last position give
    every action's first-token log-probability. The cache is then copied to each (decision, action) pair and a second
    forward pass runs the remaining action tokens on it (in passes of at most ``max_tokens`` cached + new tokens if
    given).

    Args:
        model: A causal LM that returns ``past_key_values`` (Hugging Face, optionally peft-wrapped).
        batch: Token ids from :func:`encode_per_action` or :func:`collate_per_action`.
        max_tokens: Bound on pairs x (context + action length) per continuation pass (``None``: all pairs at once).

    Returns:
        ``[batch, max_actions]`` summed log-likelihoods of the actions, ``-inf`` past each ``num_actions``.
    """
    encoded = model(
        input_ids=batch.context_ids,
        attention_mask=batch.context_mask,
        position_ids=position_ids_for(batch.context_mask),
        logits_to_keep=1,
        use_cache=True,
    )
    first = encoded.logits[:, -1].float().log_softmax(-1)
    pair_scores = first[batch.decision, batch.action_ids[:, 0]]
    if batch.action_ids.shape[1] == 1:
        return _scatter_scores(batch, pair_scores)
    layers = [(layer[0], layer[1]) for layer in encoded.past_key_values]
    inputs = batch.action_ids[:, :-1]
    mask = torch.cat([batch.context_mask[batch.decision], batch.action_mask[:, :-1]], dim=1)
    start = batch.context_mask.sum(-1)[batch.decision].unsqueeze(-1)
    positions = start + torch.arange(inputs.shape[1], device=inputs.device)
    chunk = _rows_per_pass(inputs.shape[0], mask.shape[1], max_tokens)
    continuation = []
    for first_row in range(0, inputs.shape[0], chunk):
        rows = slice(first_row, first_row + chunk)
        owner = batch.decision[rows]
        cache = _dynamic_cache([(keys[owner], values[owner]) for keys, values in layers])  # the context, per action
        logits = model(
            input_ids=inputs[rows],
            attention_mask=mask[rows],
            position_ids=positions[rows],
            past_key_values=cache,
            use_cache=True,
        ).logits
        continuation.append(_token_log_likelihood(logits, batch.action_ids[rows, 1:], batch.action_mask[rows, 1:]))
    return _scatter_scores(batch, pair_scores + torch.cat(continuation))
