"""A check that a reflection states only what the episode has shown: the test of the searching teacher's honesty.

It reads the engine's own answers in the observations (not the memory lines the environment derives from them) and
finds, in a reflection, the statements it cannot support:

* a name (``tomato 1``, ``fridge 1``) that no answer and not the task has mentioned;
* ``<object> in the <receptacle>`` (or ``the <receptacle>, and the <object> is here``) when no answer showed the
  object there (listed among the receptacle's contents, picked up from it or moved to it);
* ``I have not seen a <type>`` when an answer has shown one.

Example:
    >>> room = "You are in the middle of a room. Looking quickly around you, you see a fridge 1."
    >>> ungrounded("I saw the tomato 1 in the fridge 1. Next: go to fridge 1.", ["Your task is to: x.", room])
    ['tomato 1 is not in any observation', 'tomato 1 in fridge 1 was never shown']
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NAME = r"[a-z]+ \d+"
_DERIVED = ("Holding:", "Checked:", "Not checked:", "> ")
_IN_RE = re.compile(rf"\b(?P<obj>{_NAME}) in the (?P<recep>{_NAME})")
_HERE_RE = re.compile(rf"\bthe (?P<recep>{_NAME}), and the (?P<obj>{_NAME}) is here")
_UNSEEN_RE = re.compile(r"I have not seen an? ([a-z]+)")


def engine_lines(observations: Sequence[str]) -> list[str]:
    """The lines of the observations that are the engine's answers or the task (not the derived memory lines)."""
    return [line for text in observations for line in text.splitlines() if not line.startswith(_DERIVED)]


def _shown_in(obj: str, recep: str, lines: Sequence[str]) -> bool:
    listed = re.compile(rf"\b{re.escape(recep)}\b.*you see [^.]*\b{re.escape(obj)}\b")
    moved = (f"You move the {obj} to the {recep}.", f"You pick up the {obj} from the {recep}.")
    return any(listed.search(line) or any(m in line for m in moved) for line in lines)


def ungrounded(reflection: str, observations: Sequence[str]) -> list[str]:
    """The statements of ``reflection`` that ``observations`` (this turn's and the earlier ones) do not support."""
    lines = engine_lines(observations)
    text = "\n".join(lines)
    problems = [
        f"{name} is not in any observation"
        for name in dict.fromkeys(re.findall(rf"\b{_NAME}\b", reflection))
        if not re.search(rf"\b{re.escape(name)}\b", text)
    ]
    for match in (*_IN_RE.finditer(reflection), *_HERE_RE.finditer(reflection)):
        if not _shown_in(match.group("obj"), match.group("recep"), lines):
            problems.append(f"{match.group('obj')} in {match.group('recep')} was never shown")
    for kind in _UNSEEN_RE.findall(reflection):
        if re.search(rf"\b{kind} \d+", text):
            problems.append(f"a {kind} was shown, but the reflection says none was")
    return problems
