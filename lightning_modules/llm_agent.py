"""LLM players: a model behind an OpenAI-compatible endpoint as the policy (and optionally as the reflection model).

The policy reads exactly the prompt our policies read (:func:`~datamodules.prompt.format_policy_prompt`: observation,
optional ``# Analyze:`` section, the labelled admissible actions, ``# Action:``) after a short system message, and
answers with a label. The answer is parsed as a label (``B``, ``B.``, ``(B)``, ``Answer: B``, or the action's own
text); anything else is an **invalid action** (see :func:`~datamodules.rollout.play_episodes`). The requests of all
lanes of a turn go out concurrently, and the endpoint's on-disk cache makes a rerun free.

``reflect-rl evaluate-llm`` plays the held-out episodes of a config's data section (the seeds and tasks of
:meth:`RolloutDataModule.eval_seeds` / :meth:`~RolloutDataModule.make_eval_envs`, the stage of
:attr:`~RolloutDataModule.evaluation_stage`: the same episodes our models are tested on) and prints the table of the
pipeline: success rate with its 95% Wilson interval, return, length. Each run adds its row to ``results.json`` of the
output directory, and ``--compare`` adds the rows of other results (e.g. the pipeline's), so GPT-4, Mistral 7B and a
fine-tuned model stand in one table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym

from datamodules.llm.client import ChatClient, EndpointConfig
from datamodules.prompt import ACTION_LABELS, format_policy_prompt, format_reflection_prompt, label_index
from datamodules.rollout import EpisodeResult, Turn, play_episodes
from lightning_modules.agent import TEACHER
from lightning_modules.evaluation import evaluate_player, results_table

POLICY_SYSTEM = (
    "You are playing a text-based game. Each turn you read the current state{analysis} and the actions you can take "
    "now, each with a label ({labels}, ...). Choose the best action. Reply with its label only, e.g. {example}, "
    "and nothing else."
)
#: Stage configs per environment (``configs/<env>/``); ``evaluate-llm`` reads the data section of ``reflect_rl.yaml``.
CONFIG_ROOT = Path(__file__).resolve().parents[1] / "configs"

REFLECTION_SYSTEM = (
    "You are playing a text-based game. Each turn you read the current state. Analyze the current situation and plan "
    "what to do next in at most {max_words} words. Don't give the choice yet: no action labels, no lists."
)

_ANSWER_PREFIX = re.compile(r"^\s*(?:the\s+)?(?:answer|action|choice|label)\s*(?:is)?\s*[:=]?\s*", re.IGNORECASE)


def parse_label(answer: str, actions: Sequence[str]) -> int | None:
    """The action index an answer names, or ``None`` (an invalid action).

    Accepted: a label alone or decorated (``B``, `` B.``, ``(B)``, ``**B**``, ``B. go north``, ``Answer: B``), and the
    exact text of an action. A label outside the admissible ones, or prose, is invalid.
    """
    text = answer.strip()
    if not text:
        return None
    for index, action in enumerate(actions):  # the action's own text
        if text.rstrip(".").strip().lower() == action.lower():
            return index
    text = _ANSWER_PREFIX.sub("", text).strip().strip("*_`\"'").strip()
    match = re.match(r"^[\(\[]?([A-Za-z]{1,2})(?:[\)\]\.:,]|\s|$)", text)
    if match is None:
        return None
    candidate = match.group(1)
    rest = text[match.end() :].strip()
    if rest and candidate.lower() in ("i", "a") and not text[len(candidate) :].lstrip().startswith((".", ")", ":")):
        return None  # "I think ..." / "A good move is ..." are prose, not "A. go south" or "A) go south"
    if rest and len(candidate) == 2 and not text[2:].lstrip().startswith((".", ")", ":")):
        return None  # "Go north" is not the label "Go"
    try:
        return label_index(candidate, len(actions))
    except ValueError:
        return None


class LLMAgent:
    """A policy (and optionally a reflection model) behind OpenAI-compatible endpoints, acting on batches of turns.

    Args:
        policy: The endpoint client of the policy model.
        reflection: ``None`` (no analysis section), :data:`~lightning_modules.agent.TEACHER` (the environment's
            rule-based teacher reflects: an upper bound), or an endpoint client whose model writes the analysis from
            the observation alone (no privileged information).
        max_reflection_words: The analysis length the reflection prompt asks for.
        answer_tokens: Completion budget of the policy's answer (a label needs one or two tokens).
        sampled_temperature: The policy's temperature when not greedy (greedy is temperature 0).

    Example:
        >>> agent = LLMAgent(ChatClient(EndpointConfig(model="gpt-4"), cache_dir="runs/llm_eval/llm_cache"))
        >>> results = agent.play(envs, seeds=range(100), stage="full", greedy=True)
    """

    def __init__(
        self,
        policy: ChatClient,
        reflection: ChatClient | str | None = None,
        max_reflection_words: int = 50,
        answer_tokens: int = 8,
        sampled_temperature: float = 1.0,
    ) -> None:
        if isinstance(reflection, str) and reflection != TEACHER:
            raise ValueError(f"reflection must be an endpoint client, {TEACHER!r} or None, got {reflection!r}.")
        self.policy, self.reflection = policy, reflection
        self.max_reflection_words = max_reflection_words
        self.answer_tokens = answer_tokens
        self.sampled_temperature = sampled_temperature

    def reflections(self, turns: Sequence[Turn]) -> list[str | None]:
        """The analysis each turn's prompt shows (``None``: no analysis section)."""
        if self.reflection is None:
            return [None] * len(turns)
        if self.reflection == TEACHER:
            return [t.reflection for t in turns]
        system = REFLECTION_SYSTEM.format(max_words=self.max_reflection_words)
        prompts = [format_reflection_prompt(t.observation) for t in turns]
        conversations = [[{"role": "system", "content": system}, {"role": "user", "content": p}] for p in prompts]
        answers = self.reflection.complete_many(conversations)
        return [" ".join(a.text.split()) for a in answers]

    def policy_messages(self, turn: Turn, reflection: str | None) -> list[dict[str, str]]:
        """The policy's messages: a system message, then our policy prompt."""
        count = len(turn.actions)
        system = POLICY_SYSTEM.format(
            analysis=", an analysis of it" if reflection is not None else "",
            labels=", ".join(ACTION_LABELS[: min(count, 3)]),
            example=ACTION_LABELS[min(1, count - 1)],
        )
        user = format_policy_prompt(turn.observation, turn.actions, reflection)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def act(self, turns: Sequence[Turn], greedy: bool = True) -> tuple[list[int | None], list[dict[str, Any]]]:
        """Choose one shown action per turn (``None``: the answer named none, an invalid action).

        Greedy is temperature 0. Sampled answers are cached per episode and turn, so the same state in two episodes is
        sampled twice, and a rerun of the evaluation is still free.

        Returns:
            The choices and, per turn, ``reflection``, the raw ``answer`` and ``invalid``.
        """
        reflections = self.reflections(turns)
        answers = self.policy.complete_many(
            [self.policy_messages(t, r) for t, r in zip(turns, reflections, strict=True)],
            salts=None if greedy else [f"sample of episode {t.seed}, turn {t.step}" for t in turns],
            temperature=0.0 if greedy else self.sampled_temperature,
            max_tokens=self.answer_tokens,
        )
        choices = [parse_label(a.text, t.actions) for a, t in zip(answers, turns, strict=True)]
        extras = [
            {"reflection": r, "answer": a.text, "invalid": c is None}
            for r, a, c in zip(reflections, answers, choices, strict=True)
        ]
        return choices, extras

    def play(
        self, envs: Sequence[gym.Env], seeds: Sequence[int], stage: str | None = None, greedy: bool = True
    ) -> list[EpisodeResult]:
        """Play one episode per seed, the environments in lock-step (all lanes' requests of a turn together)."""
        return play_episodes(
            envs, list(seeds), lambda turns: self.act(turns, greedy), stage=stage,
            teacher_reflections=self.reflection == TEACHER,
        )  # fmt: skip


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def main(argv: list[str] | None = None) -> int:
    """``reflect-rl evaluate-llm``: a model behind an OpenAI-compatible endpoint on our held-out episodes."""
    from datamodules.dataset import add_endpoint_arguments, llm_config_from_args, parse_overrides
    from datamodules.rollout_datamodule import RolloutDataModule

    parser = argparse.ArgumentParser(
        prog="reflect-rl evaluate-llm",
        description="Play a config's held-out episodes with a model behind an OpenAI-compatible endpoint as the "
        "policy (and optionally the reflection model) and print the held-out table.",
        epilog="Data options can be overridden: --data.test_seed=5. The API key is read from --api-key-env and is "
        "never written anywhere.",
    )
    parser.add_argument("--env", default="dangerous_taxi", help="a folder of configs/ (default: dangerous_taxi)")
    parser.add_argument(
        "--config", action="append", default=None, help="config(s) whose data section to use (default: "
        "configs/<env>/reflect_rl.yaml, the one the pipeline tests with)",
    )  # fmt: skip
    parser.add_argument("--split", choices=("test", "val"), default="test", help="held-out split (default test)")
    parser.add_argument("--episodes", type=int, default=100, help="held-out episodes (default 100, as the pipeline)")
    parser.add_argument(
        "--reflection", choices=("none", "llm", "teacher"), default="none",
        help="analysis section: none, written by an LLM (--reflection-model), or the environment's teacher",
    )  # fmt: skip
    parser.add_argument("--reflection-model", default=None, help="model that reflects (default: --model)")
    parser.add_argument("--reflection-base-url", default=None, help="its endpoint (default: --base-url)")
    parser.add_argument("--sampled", action="store_true", help="also play sampled (temperature --temperature)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    parser.add_argument("--answer-tokens", type=int, default=8, help="completion budget of an answer (default 8)")
    parser.add_argument("--name", default=None, help="row name in the table (default: the model and reflection)")
    parser.add_argument("--output-dir", type=Path, default=None, help="default: runs/llm_eval/<env>")
    parser.add_argument(
        "--compare", action="append", type=Path, default=[],
        help="a results.json (of the pipeline or of evaluate-llm) whose rows to add to the table; repeatable",
    )  # fmt: skip
    add_endpoint_arguments(parser)
    args, rest = parser.parse_known_args(argv)
    if not args.model:
        parser.error("--model is required (the model name the endpoint serves).")
    overrides = parse_overrides(rest)
    configs = args.config or [str(CONFIG_ROOT / args.env / "reflect_rl.yaml")]
    if not Path(configs[0]).is_file():
        known = sorted(p.name for p in CONFIG_ROOT.iterdir() if p.is_dir())
        parser.error(f"{configs[0]} does not exist; environments in configs/: {', '.join(known)}.")
    datamodule = RolloutDataModule.from_config(configs, overrides)
    output = args.output_dir or Path("runs") / "llm_eval" / args.env
    cache_dir = Path(args.cache_dir) if args.cache_dir else output / "llm_cache"

    policy_config = llm_config_from_args(args)
    policy = ChatClient(EndpointConfig.from_dict(policy_config), cache_dir=cache_dir)
    reflection: ChatClient | str | None = None
    if args.reflection == "teacher":
        reflection = TEACHER
    elif args.reflection == "llm":
        reflection_config = {**policy_config, "max_tokens": 160}
        reflection_config["model"] = args.reflection_model or args.model
        reflection_config["base_url"] = args.reflection_base_url or args.base_url
        reflection = ChatClient(EndpointConfig.from_dict(reflection_config), cache_dir=cache_dir)
    agent = LLMAgent(policy, reflection, answer_tokens=args.answer_tokens, sampled_temperature=args.temperature)

    modes = ("greedy", "sampled") if args.sampled else ("greedy",)
    evaluation = evaluate_player(agent, datamodule, args.split, args.episodes, modes)
    metrics, records = evaluation.metrics, evaluation.records
    reads = {"none": "", "teacher": " + teacher reflection", "llm": f" + {args.reflection_model or 'own'} reflection"}
    name = args.name or f"{args.model}{reads[args.reflection]}"
    output.mkdir(parents=True, exist_ok=True)
    results_path = output / "results.json"
    saved = json.loads(results_path.read_text()) if results_path.is_file() else {}
    rows = dict(saved.get("results", {}))
    rows[name] = metrics
    usage = {**saved.get("usage", {}), name: policy.usage}
    results_path.write_text(json.dumps({"results": rows, "usage": usage, "episodes": args.episodes}, indent=2))
    with (output / f"transcripts_{_slug(name)}.jsonl").open("w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    table_rows = dict(rows)
    for path in args.compare:
        table_rows.update(json.loads(path.read_text()).get("results", {}))
    table = results_table(table_rows, args.episodes, args.env, args.split)
    print("\n" + table)
    (output / "results.txt").write_text(table + "\n")
    print(f"policy: {policy.usage_summary()}", file=sys.stderr)
    if isinstance(reflection, ChatClient):
        print(f"reflection: {reflection.usage_summary()}", file=sys.stderr)
    return 0
