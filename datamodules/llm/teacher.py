"""An LLM teacher: reflections by a model behind an OpenAI-compatible endpoint, as GPT-4 wrote them in the paper.

It takes the place of the environment's rule-based teacher (``env.unwrapped.teacher_reflection()``) in
:class:`~datamodules.rollout.TeacherStream`. The prompts follow the paper's data generation:

* every turn the model reads the state and the admissible actions and writes a short reflection; the oracle's next
  action is given as a **spoiler** that it must use but never mention ("pretend you worked it out yourself");
* after a **negative example** (the behaviour policy erred on purpose) the prompt says the last action was a mistake
  and asks why it was wrong and how to recover: a **corrective** reflection;
* the first turn asks for a one-sentence analysis, later turns for a short reflection on the last action and the plan.

Reflections end with the next action quoted as it is written in the action list, as the rule-based teachers end with
their recommendation, so :func:`~datamodules.prompt.recommended_action` finds it. The requests of all the lanes of a
turn go out concurrently (:meth:`ChatClient.complete_many`).

What the teacher's behaviour policy plays does not depend on the reflections (it follows the environment's oracle and
its own mistakes), so a fixed set of episodes is played first and reflected on afterwards
(:meth:`~datamodules.rollout.TeacherStream.episodes`, with :func:`turn_context`): only the kept turns cost a request.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datamodules.llm.client import ChatClient, EndpointConfig, read_api_key
from datamodules.prompt import SECTION_MARKERS

logger = logging.getLogger("reflect_rl.llm")

#: The ``data.teacher`` value meaning "the environment's rule-based teacher writes the SFT data's reflections". Not
#: to be confused with ``reflection: teacher`` of the policy stages (:data:`lightning_modules.agent.TEACHER`), which
#: says whose reflections the policy reads while it plays.
RULES = "rules"

#: Extra keys of an LLM teacher's config (besides :class:`EndpointConfig`'s).
TEACHER_KEYS = ("max_words",)

SYSTEM_PROMPT = """You write the inner reflection of a player of a text-based game, one turn at a time.
Each turn you get the current state, the actions that can be taken now and the last action taken. Reflect on it:
- What did the last action lead to? Was it a good move? Why?
- What should be done next, and why?

You may be given a spoiler: the best action to take next. Use it so that your plan is right, but never mention that \
you saw a spoiler, a hint, a best or optimal action, or anything else a player could not know: pretend you just know \
it. Do not use the words "spoiler" or "optimal".

Write plain sentences, at most {max_words} words, no lists, no headings, no action labels such as "A." or "B.". End \
with the action you will take next, quoted exactly as it is written in the list of actions, e.g. ... so next I will \
"go south"."""

STATE = "------ State ------\n{observation}\n\n------ Actions you can take now ------\n{actions}"
LAST_ACTION = "\n\n------ Last action ------\n{action}"
SPOILER = '\n\n--- Spoiler: the best action to take next is "{oracle}" ---'
FIRST_ASK = "\n\n------ Give me a one-sentence analysis of what I should do ------"
ASK = "\n\n------ Give me a two-sentence reflection ------"
CORRECTIVE_ASK = (
    "\n\n------ The last action was a mistake, a suboptimal move. Give me a two-sentence reflection: say why it was "
    "wrong and how to recover from it ------"
)

_SPOILER_WORDS = re.compile(r"\b(spoiler|optimal|hint)\b", re.IGNORECASE)


@dataclass
class TeacherContext:
    """What the teacher knows at one turn of one lane.

    Attributes:
        observation: The environment's text.
        actions: The admissible action texts (in the environment's order).
        oracle_action: The oracle's next action (the spoiler), or ``None`` if the environment knows none.
        previous_action: The action taken at the previous turn of this episode (``None`` at the first turn).
        previous_negative: Whether that action was a deliberate mistake (the reflection is then corrective).
    """

    observation: str
    actions: Sequence[str]
    oracle_action: str | None
    previous_action: str | None = None
    previous_negative: bool = False


def turn_context(turn: Any, previous: Any = None) -> TeacherContext:
    """The context the teacher had at a turn played by a :class:`~datamodules.rollout.TeacherStream`.

    Args:
        turn: A :class:`~datamodules.rollout.Turn` with its shown ``actions``, ``order`` (shown index -> environment
            index), ``oracle`` and, for ``previous``, ``taken`` and ``negative``.
        previous: The turn before it in the same episode (``None`` at the episode's first turn).

    Returns:
        The same context the stream gives the teacher at that turn (actions in the environment's order), so the
        request and its cache entry are the same as when the teacher reflects during play.

    Example:
        >>> [episode] = TeacherStream(envs, mistake_prob=0.2, with_reflection=False).episodes(1)
        >>> contexts = [turn_context(t, episode[i - 1] if i else None) for i, t in enumerate(episode)]
    """
    order = list(turn.order) or list(range(len(turn.actions)))
    actions = [""] * len(order)
    for shown, index in enumerate(order):
        actions[index] = turn.actions[shown]
    oracle = turn.actions[turn.oracle] if turn.oracle is not None else None
    if previous is None or previous.taken is None:
        return TeacherContext(turn.observation, actions, oracle)
    return TeacherContext(
        turn.observation, actions, oracle, str(previous.actions[previous.taken]), bool(previous.negative)
    )


def teacher_messages(context: TeacherContext, max_words: int = 50) -> list[dict[str, str]]:
    """The chat messages asking for one reflection (system prompt, then the state with the spoiler)."""
    user = STATE.format(observation=context.observation.rstrip(), actions="\n".join(f"- {a}" for a in context.actions))
    if context.previous_action is not None:
        user += LAST_ACTION.format(action=context.previous_action)
    if context.oracle_action is not None:
        user += SPOILER.format(oracle=context.oracle_action)
    if context.previous_action is None:
        user += FIRST_ASK
    else:
        user += CORRECTIVE_ASK if context.previous_negative else ASK
    return [
        {"role": "system", "content": SYSTEM_PROMPT.format(max_words=max_words)},
        {"role": "user", "content": user},
    ]


def clean_reflection(text: str) -> str:
    """One line of plain text that cannot end the analysis section early (section markers lose their ``#``)."""
    text = " ".join(text.split())
    for marker in SECTION_MARKERS:
        text = text.replace(marker, marker.lstrip("# "))
    return text.lstrip("#").strip()


def mentions_spoiler(text: str) -> bool:
    """Whether a reflection gives away that it saw a spoiler (``spoiler``, ``optimal``, ``hint``)."""
    return bool(_SPOILER_WORDS.search(text))


class LLMTeacher:
    """Writes teacher reflections with a chat model; one concurrent batch of requests per turn of all lanes.

    Args:
        client: The endpoint client (its cache makes a rerun free).
        max_words: Length the prompt asks for.

    Attributes:
        spoiler_mentions: Reflections so far that mention a spoiler or an optimal action (a warning is logged).

    Example:
        >>> teacher = LLMTeacher(ChatClient(EndpointConfig(model="gpt-4"), cache_dir="runs/llm_cache"), max_words=50)
        >>> context = TeacherContext(observation, info["actions"], oracle_action=info["actions"][info["oracle_action"]])
        >>> [reflection] = teacher.reflect([context])  # ends with the next action, e.g. '... I will "go north".'
        >>> stream = TeacherStream(envs, teacher=teacher)  # instead of the environment's rule-based teacher
    """

    def __init__(self, client: ChatClient, max_words: int = 50) -> None:
        self.client = client
        self.max_words = int(max_words)
        self.spoiler_mentions = 0

    @property
    def name(self) -> str:
        """``llm:<model>``, as recorded in datasets."""
        return f"llm:{self.client.config.model}"

    def reflect(self, contexts: Sequence[TeacherContext]) -> list[str]:
        """One reflection per context, the requests sent concurrently (cached ones are not sent)."""
        if not contexts:
            return []
        answers = self.client.complete_many([teacher_messages(c, self.max_words) for c in contexts])
        reflections = [clean_reflection(a.text) for a in answers]
        leaks = sum(mentions_spoiler(r) for r in reflections)
        if leaks:
            self.spoiler_mentions += leaks
            logger.warning("%d LLM reflection(s) mention a spoiler or an optimal action", leaks)
        return reflections


def split_teacher_config(config: Mapping[str, Any]) -> tuple[EndpointConfig, dict[str, Any]]:
    """Split a ``teacher`` mapping into the endpoint config and the teacher's own options (``max_words``).

    Raises:
        ValueError: for an unknown key or a bad value.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"An LLM teacher config must be a mapping, got {type(config).__name__}.")
    own = {k: config[k] for k in TEACHER_KEYS if k in config}
    endpoint = EndpointConfig.from_dict({k: v for k, v in config.items() if k not in TEACHER_KEYS})
    return endpoint, own


def check_teacher_spec(spec: str | Mapping[str, Any] | None) -> None:
    """Check a ``teacher`` value without making requests: ``"rules"``/``None``, or an LLM config whose key is set.

    Raises:
        ValueError: for another string, a bad config or a missing API key.
    """
    if spec is None or spec == RULES:
        return
    if isinstance(spec, str):
        raise ValueError(
            f"teacher must be {RULES!r} or an endpoint config such as {{base_url: ..., model: ...}}, got {spec!r}."
        )
    endpoint, _ = split_teacher_config(spec)
    read_api_key(endpoint)


def make_teacher(
    spec: str | Mapping[str, Any] | None, cache_dir: str | os.PathLike[str] | None = None
) -> LLMTeacher | None:
    """The teacher a ``teacher`` value names: ``None`` for the rule-based teacher, else an :class:`LLMTeacher`.

    Args:
        spec: ``"rules"`` (or ``None``), or a mapping of :class:`EndpointConfig` fields plus ``max_words``.
        cache_dir: The cache directory when the mapping has no ``cache_dir`` (a directory of the run's output).

    Raises:
        ValueError: for a bad value or a missing API key.
    """
    check_teacher_spec(spec)
    if spec is None or spec == RULES:
        return None
    endpoint, own = split_teacher_config(spec)  # type: ignore[arg-type]
    return LLMTeacher(ChatClient(endpoint, cache_dir=cache_dir), **own)
