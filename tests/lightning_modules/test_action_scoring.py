"""Enumeration (ActionHead) and per-action scoring (naive, cached) against unbatched full-vocabulary references."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import environments  # noqa: F401
from datamodules.behaviour import teacher_action
from datamodules.prompt import format_action_answer, format_policy_prompt
from environments.auto_explore import generate_tasks, package_root
from lightning_modules.action_head import ActionHead, position_ids_for
from lightning_modules.action_scoring import (
    action_continuation,
    cached_action_scores,
    collate_per_action,
    encode_per_action,
    naive_action_scores,
    per_action_context,
)
from lightning_modules.backbone import BackboneSpec, TinyGPT2Spec, load_backbone

TINY = TinyGPT2Spec(n_layer=2, n_embd=32, n_head=2, n_positions=1024, vocab_size=400, num_labels=64)


def play(env, seed, mistake_prob=0.3):
    rng = np.random.default_rng(seed)
    observation, info = env.reset(seed=seed)
    turns, done = [], False
    while not done:
        turns.append((observation, env.unwrapped.teacher_reflection(), list(info["actions"])))
        action, _ = teacher_action(info, rng, mistake_prob)
        observation, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    return turns


@pytest.fixture(scope="module")
def setup():
    taxi = {}
    for fmt in ("compact", "grid"):
        env = gym.make("ReflectRL/DangerousTaxi-v0", observation_format=fmt)
        taxi[fmt] = [turn for seed in range(3) for turn in play(env, seed)]
    env = gym.make("ReflectRL/AutoExplore-v0", tasks=generate_tasks(package_root("gymnasium"), seed=0, max_tasks=20))
    explore = [turn for seed in range(6) for turn in play(env, seed)]
    texts = [format_policy_prompt(o, a, r) + format_action_answer(0) for o, r, a in [*explore, *sum(taxi.values(), [])]]
    torch.manual_seed(0)
    model, tokenizer = load_backbone(BackboneSpec(tiny=TINY), lambda: texts)
    with torch.no_grad():  # a sharper, position-sensitive model than the 0.02-std init, so differences show
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0.0, 0.3)
    model.eval()
    # Decisions of different lengths and admissible counts: both taxi formats, AutoExplore folders of several sizes.
    by_count = {len(a): (o, r, a) for o, r, a in explore if len(a) != 6}
    decisions = [taxi["compact"][0], taxi["grid"][1], *(by_count[k] for k in sorted(by_count)[-4:])]
    assert len({len(a) for _, _, a in decisions}) == 5 and len({len(o) for o, _, _ in decisions}) == 6
    return model, tokenizer, decisions


def full_vocabulary_label_log_probs(model, ids, label_ids, num_actions):
    """The policy from the full next-token distribution of one unpadded prompt, restricted to its labels."""
    log_probs = model(input_ids=torch.tensor([ids])).logits[0, -1].log_softmax(-1)
    labels = log_probs[label_ids[:num_actions]]
    return labels - labels.logsumexp(-1)


def test_action_head_equals_the_full_vocabulary_softmax_restricted_to_the_labels(setup):
    model, tokenizer, decisions = setup
    prompts = [format_policy_prompt(o, a, r) for o, r, a in decisions]
    counts = torch.tensor([len(a) for _, _, a in decisions])
    head = ActionHead(tokenizer, max_actions=int(counts.max()) + 2)
    label_ids = torch.tensor([tokenizer(" " + chr(ord("A") + k))["input_ids"][0] for k in range(26)])
    batch = tokenizer(prompts, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any(dim=1).sum() >= len(prompts) - 1  # left padding in most rows
    with torch.no_grad():
        policy = head(model, batch["input_ids"], batch["attention_mask"], counts).log_softmax(-1)
        batched = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=position_ids_for(batch["attention_mask"]),
        ).logits[:, -1]
        for row, (prompt, count) in enumerate(zip(prompts, counts.tolist(), strict=True)):
            ids = tokenizer(prompt)["input_ids"]
            reference = full_vocabulary_label_log_probs(model, ids, head.label_ids, count)
            torch.testing.assert_close(policy[row, :count], reference, atol=1e-5, rtol=1e-5)
            in_batch = batched[row].log_softmax(-1)[head.label_ids[:count]]
            torch.testing.assert_close(policy[row, :count], in_batch - in_batch.logsumexp(-1), atol=1e-5, rtol=1e-5)
            assert torch.isneginf(policy[row, count:]).all()
            assert policy[row, :count].exp().max() - policy[row, :count].exp().min() > 0.05  # not trivially uniform
    assert head.label_ids[: len(label_ids)].tolist() == label_ids.tolist()


def test_padding_does_not_change_the_action_head(setup):
    model, tokenizer, decisions = setup
    prompts = [format_policy_prompt(o, a, r) for o, r, a in decisions]
    counts = torch.tensor([len(a) for _, _, a in decisions])
    head = ActionHead(tokenizer, max_actions=int(counts.max()))
    batch = tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        together = head(model, batch["input_ids"], batch["attention_mask"], counts)
        for row, prompt in enumerate(prompts):
            alone = tokenizer([prompt], return_tensors="pt")
            assert alone["attention_mask"].all()
            by_itself = head(model, alone["input_ids"], alone["attention_mask"], counts[row : row + 1])
            torch.testing.assert_close(together[row], by_itself[0], atol=1e-5, rtol=1e-5)
        # The check has teeth: without padding-aware positions the padded rows would come out different.
        shifted = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, -1]
        admissible, padded = torch.isfinite(together), (batch["attention_mask"] == 0).any(dim=1)
        gap = (shifted[:, head.label_ids] - together).masked_fill(~admissible, 0.0).abs()
        assert gap[padded].max() > 1e-2


def brute_force_scores(model, contexts, actions):
    """Each action's summed log-likelihood after its context, one unpadded sequence at a time."""
    rows = []
    for context, choices in zip(contexts, actions, strict=True):
        scores = []
        for action in choices:
            log_probs = model(input_ids=torch.tensor([context + action])).logits[0].log_softmax(-1)
            scores.append(sum(float(log_probs[len(context) - 1 + j, token]) for j, token in enumerate(action)))
        rows.append(torch.tensor(scores))
    return rows


@pytest.mark.parametrize("max_tokens", [None, 700])
def test_naive_and_cached_scoring_give_the_unbatched_log_likelihoods(setup, max_tokens):
    model, tokenizer, decisions = setup
    batch = encode_per_action(
        tokenizer, [per_action_context(o, r) for o, r, _ in decisions], [a for *_, a in decisions]
    )
    contexts = [tokenizer(per_action_context(o, r))["input_ids"] for o, r, _ in decisions]
    actions = [[tokenizer(action_continuation(x))["input_ids"] for x in a] for *_, a in decisions]
    assert batch.action_ids.shape[1] > 2 and (batch.context_mask == 0).any()
    with torch.no_grad():
        naive = naive_action_scores(model, batch, max_tokens=max_tokens)
        cached = cached_action_scores(model, batch, max_tokens=max_tokens)
        reference = brute_force_scores(model, contexts, actions)
    torch.testing.assert_close(naive.log_softmax(-1), cached.log_softmax(-1), atol=1e-4, rtol=1e-4)
    for row, expected in enumerate(reference):
        count = len(expected)
        for scores in (naive, cached):
            torch.testing.assert_close(scores[row, :count], expected, atol=1e-3, rtol=1e-4)
            torch.testing.assert_close(
                scores[row, :count].log_softmax(-1), expected.log_softmax(-1), atol=1e-4, rtol=1e-4
            )
            assert torch.isneginf(scores[row, count:]).all()
        assert expected.softmax(-1).max() - expected.softmax(-1).min() > 0.05  # not trivially uniform


def test_per_action_scoring_with_single_token_actions_and_one_decision_per_row(setup):
    model, _, _ = setup
    generator = torch.Generator().manual_seed(1)
    contexts = [torch.randint(1, 300, (n,), generator=generator).tolist() for n in (5, 17, 9)]
    actions = [[[int(t)] for t in torch.randint(1, 300, (k,), generator=generator)] for k in (1, 4, 2)]
    batch = collate_per_action(contexts, actions, pad_id=0)
    with torch.no_grad():
        naive, cached = naive_action_scores(model, batch), cached_action_scores(model, batch)
        reference = brute_force_scores(model, contexts, actions)
    for row, expected in enumerate(reference):
        torch.testing.assert_close(naive[row, : len(expected)], expected, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(cached[row, : len(expected)], expected, atol=1e-4, rtol=1e-4)


def test_collate_rejects_decisions_without_actions_and_empty_actions():
    with pytest.raises(ValueError, match="at least one admissible action"):
        collate_per_action([[1, 2]], [[]], pad_id=0)
    with pytest.raises(ValueError, match="at least one token"):
        collate_per_action([[1, 2]], [[[3], []]], pad_id=0)


@pytest.mark.parametrize("reflection", ["The passenger is north.", None])
def test_per_action_context_is_the_policy_prompt_without_its_action_list(reflection):
    prompt = format_policy_prompt("Taxi at row 3.\n", ["go south", "go north"], reflection)
    head, _, tail = prompt.partition("\n# Actions:\n")
    assert per_action_context("Taxi at row 3.\n", reflection) == head + "\n" + tail.rsplit("\n", 1)[1]
