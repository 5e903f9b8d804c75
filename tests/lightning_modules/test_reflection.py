"""The reflection player: batched generation, and the memo of a frozen model's greedy reflections."""

import math

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from datamodules import PromptEncoder
from lightning_modules.backbone import train_tokenizer
from lightning_modules.reflection import Reflector, generate_reflections

TEXTS = [f"Taxi at row {r}, column {c}. Passenger at R.\n# Analyze:\ngo north or go south\n# Actions:" for r in range(5)
         for c in range(5)]  # fmt: skip


def players():
    tokenizer = train_tokenizer(TEXTS, vocab_size=300, num_labels=6)
    tokenizer.padding_side = "left"
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=1, n_head=2,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    return GPT2LMHeadModel(config).eval(), PromptEncoder(tokenizer, max_prompt_tokens=64, max_reflection_tokens=6)


def test_cached_reflections_equal_generated_ones_and_each_observation_is_generated_once():
    model, encoder = players()
    observations = [f"Taxi at row {i % 3}, column 1." for i in range(7)]
    reflector = Reflector(model, encoder, cache_size=10)
    first = reflector(observations)
    assert first == generate_reflections(model, encoder, observations)
    assert (reflector.generated, reflector.hits) == (3, 4)  # three distinct observations
    assert reflector(observations[:2]) == first[:2] and reflector.generated == 3


def test_cache_evicts_the_least_recently_used_and_sampling_is_never_cached():
    model, encoder = players()
    reflector = Reflector(model, encoder, cache_size=2)
    reflector(["a.", "b."])
    reflector(["a.", "c."])  # b is the least recently used
    assert list(reflector._cache) == ["a.", "c."]
    sampler = Reflector(model, encoder, cache_size=10, do_sample=True)
    sampler(["a.", "a."])
    assert sampler.generated == 2 and not sampler._cache


def test_agent_shows_the_reflection_on_the_share_of_turns_reflect_prob_asks_for():
    from datamodules.rollout import Turn
    from lightning_modules import ActionHead
    from lightning_modules.agent import TEACHER, Agent

    model, encoder = players()
    turns = [Turn(f"Taxi at row {i % 5}, column 1.", ["go north", "go south"], "go north", 0) for i in range(400)]
    head = ActionHead(encoder.tokenizer, 2)
    agent = Agent(model, head, encoder, TEACHER, reflect_prob=0.25, seed=3)
    shown = agent.reflections(turns, explore=True)  # training rollouts: a quarter of the turns
    assert 0.18 < sum(r is not None for r in shown) / len(turns) < 0.32
    assert all(r in (None, "go north") for r in shown)
    assert shown == Agent(model, head, encoder, TEACHER, reflect_prob=0.25, seed=3).reflections(turns, explore=True)
    assert agent.reflections(turns) == ["go north"] * len(turns)  # held-out play reflects on every turn
    assert Agent(model, head, encoder, None).reflections(turns) == [None] * len(turns)
    choices, extras = Agent(model, head, encoder, Reflector(model, encoder)).act(turns[:3], greedy=True)
    assert len(choices) == 3 and all(0 <= c < 2 for c in choices)
    assert encoder.tokenizer.decode(extras[0]["prompt_ids"]).endswith("# Action:")
    assert "# Analyze:" in encoder.tokenizer.decode(extras[0]["prompt_ids"])


def test_exploring_agent_samples_from_its_behaviour_policy_and_keeps_both_log_probabilities():
    from datamodules.rollout import Turn
    from lightning_modules import ActionHead
    from lightning_modules.agent import Agent

    model, encoder = players()
    turns = [Turn("Taxi at row 1, column 1.", ["go north", "go south", "go east"], None, 0) for _ in range(300)]
    head = ActionHead(encoder.tokenizer, 3)
    agent = Agent(model, head, encoder, None, epsilon=1.0, seed=0)  # the behaviour policy is uniform
    choices, extras = agent.act(turns, explore=True)
    assert all(abs(e["behaviour_logprob"] - math.log(1 / 3)) < 1e-5 for e in extras)
    assert {0, 1, 2} == set(choices) and max(choices.count(c) for c in range(3)) < 140
    _, plain = agent.act(turns[:5], explore=False)  # not exploring: the behaviour is the policy
    assert all(abs(e["behaviour_logprob"] - e["logprob"]) < 1e-6 for e in plain)
    hot = Agent(model, head, encoder, None, temperature=1e3, seed=0).act(turns[:5], explore=True)[1]
    assert all(abs(e["behaviour_logprob"] - math.log(1 / 3)) < 1e-2 for e in hot)
