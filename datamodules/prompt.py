"""The prompt format: the one place that decides what the players read.

Every stage (reflection SFT, policy SFT, RLFT, evaluation, the ``play`` command) builds its text here, so the models
see the same layout everywhere::

    <observation>
    # Analyze:
    <reflection>
    # Actions:
    A. go south
    B. go north
    # Action:

The policy answers with one label token (`` A``); the reflection model writes the text after ``# Analyze:`` and stops
at the next section marker. The markers themselves are defined in :mod:`environments.prompt_markers` (the bottom
layer, so that environments can escape them in what they show) and re-exported here.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Sequence

from environments.prompt_markers import ACTION_MARKER, ACTIONS_MARKER, ANALYZE_MARKER, SECTION_MARKERS

__all__ = [
    "ACTIONS_MARKER",
    "ACTION_LABELS",
    "ACTION_MARKER",
    "ANALYZE_MARKER",
    "SECTION_MARKERS",
    "action_label",
    "format_action_answer",
    "format_actions",
    "format_policy_prompt",
    "format_reflection_prompt",
    "format_scoring_context",
    "label_index",
    "recommended_action",
    "with_recommendation",
]

#: Action labels in display order: ``A``..``Z``, ``a``..``z``, then ``AA``, ``AB``, ... The first 52 are single tokens
#: (after a space) in common BPE vocabularies such as GPT-2's; the embedded tokenizer makes as many as needed single.
ACTION_LABELS: tuple[str, ...] = (
    tuple(string.ascii_uppercase)
    + tuple(string.ascii_lowercase)
    + tuple(a + b for a, b in itertools.product(string.ascii_uppercase, repeat=2))
)


def action_label(index: int) -> str:
    """Return the label shown for the ``index``-th admissible action (``0 -> "A"``).

    Raises:
        ValueError: if there are not that many labels.
    """
    if not 0 <= index < len(ACTION_LABELS):
        raise ValueError(f"No action label for index {index}: there are {len(ACTION_LABELS)} labels.")
    return ACTION_LABELS[index]


def label_index(label: str, num_actions: int) -> int:
    """Return the action index of ``label`` among ``num_actions`` admissible actions (case-insensitive up to 26).

    Raises:
        ValueError: if ``label`` is not one of the first ``num_actions`` labels.
    """
    wanted = label.strip()
    labels = ACTION_LABELS[:num_actions]
    if wanted in labels:
        return labels.index(wanted)
    if num_actions <= 26 and wanted.upper() in labels:  # case does not matter while there are no lowercase labels
        return labels.index(wanted.upper())
    shown = ", ".join(ACTION_LABELS[: min(num_actions, 6)]) + (", ..." if num_actions > 6 else "")
    raise ValueError(f"{label!r} is not an action label here; choose one of {shown} (there are {num_actions}).")


def format_actions(actions: Sequence[str]) -> str:
    """Return the labelled action list, one ``"A. text"`` line per action."""
    if len(actions) > len(ACTION_LABELS):
        raise ValueError(f"{len(actions)} admissible actions but only {len(ACTION_LABELS)} labels.")
    return "\n".join(f"{label}. {text}" for label, text in zip(ACTION_LABELS, actions, strict=False))


def format_reflection_prompt(observation: str) -> str:
    r"""Return the reflection model's prompt: the observation and the analysis marker; it writes what follows.

    Example:
        >>> format_reflection_prompt("Taxi at row 3, column 0.")
        'Taxi at row 3, column 0.\n# Analyze:\n'
    """
    return f"{observation.rstrip()}\n{ANALYZE_MARKER}\n"


def format_policy_prompt(observation: str, actions: Sequence[str], reflection: str | None = None) -> str:
    r"""Return the policy's prompt, ending right before the label it must pick.

    Args:
        observation: The environment's text observation.
        actions: The admissible action texts, in the order shown (``info["actions"]``).
        reflection: The analysis to show, or ``None`` for the "RL without reflection" prompt (no analysis section).

    Example:
        >>> format_policy_prompt("Taxi at row 3, column 0.", ["go south", "go north"], "The passenger is north.")
        'Taxi at row 3, column 0.\n# Analyze:\nThe passenger is north.\n# Actions:\nA. go south\nB. go north\n# Action:'
    """
    parts = _observation_and_analysis(observation, reflection)
    parts += [ACTIONS_MARKER, format_actions(actions), ACTION_MARKER]
    return "\n".join(parts)


def format_scoring_context(observation: str, reflection: str | None = None) -> str:
    r"""Return the policy prompt without the labelled action list: the context per-action scoring continues.

    Per-action scoring (:mod:`lightning_modules.action_scoring`, kept for benchmarks) does not list the actions; it
    scores each action's text as a continuation of this context.

    Example:
        >>> format_scoring_context("Taxi at row 3, column 0.", "The passenger is north.")
        'Taxi at row 3, column 0.\n# Analyze:\nThe passenger is north.\n# Action:'
    """
    return "\n".join([*_observation_and_analysis(observation, reflection), ACTION_MARKER])


def _observation_and_analysis(observation: str, reflection: str | None) -> list[str]:
    """The lines every policy prompt starts with: the observation, then the analysis section if there is one."""
    parts = [observation.rstrip()]
    if reflection is not None:
        parts += [ANALYZE_MARKER, reflection.strip()]
    return parts


def format_action_answer(index: int) -> str:
    """Return the text that follows the policy prompt when action ``index`` is chosen (a space and its label).

    Example:
        >>> format_action_answer(1)
        ' B'
    """
    return " " + action_label(index)


def with_recommendation(reflection: str, actions: Sequence[str], index: int) -> str | None:
    """Return ``reflection`` with its recommendation (see :func:`recommended_action`) replaced by action ``index``.

    The rest of the analysis is kept, so the result is a reflection that reasons as before and then recommends
    another action: the policy's negative example. ``None`` when the reflection recommends no admissible action.

    Example:
        >>> with_recommendation("A wall is south, so the best action now is to go north.", ["go south", "go north"], 0)
        'A wall is south, so the best action now is to go south.'
    """
    current = recommended_action(reflection, actions)
    if current is None:
        return None
    start = reflection.lower().rfind(actions[current].lower())
    return reflection[:start] + actions[index] + reflection[start + len(actions[current]) :]


def recommended_action(reflection: str, actions: Sequence[str]) -> int | None:
    """Return the action a reflection recommends: the admissible action whose text it mentions last.

    Teachers end with their recommendation ("... so the best action now is to go south.", "Next: cd src."), so the
    last mention is the recommendation. Returns ``None`` when no action text appears.

    Example:
        >>> recommended_action("Going south hits a wall, so next I will go north.", ["go south", "go north"])
        1
    """
    lowered = reflection.lower()
    best, best_end = None, -1
    for index, text in enumerate(actions):
        position = lowered.rfind(text.lower())
        if position >= 0:
            end = position + len(text)
            if end > best_end or (end == best_end and len(text) > len(actions[best])):
                best, best_end = index, end
    return best
