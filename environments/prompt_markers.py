"""The section markers of the prompt format: their one definition, at the bottom layer so environments can use them.

:mod:`datamodules.prompt` lays out every prompt with these markers (and re-exports them); the AutoExplore sandbox
breaks them inside file names and contents (:func:`environments.auto_explore.sandbox.defuse_markers`,
:func:`~environments.auto_explore.sandbox.display_name`) so that nothing an environment shows can forge a prompt
section. They live here, and not in ``datamodules``, because ``environments`` imports nothing from the packages above
it.

Every marker starts with :data:`MARKER_START`: ``display_name`` escapes that character in names and
``defuse_markers`` breaks the marker right after it, so a new marker must start with it too (a test checks it).

Example:
    >>> from environments.prompt_markers import ACTION_MARKER, SECTION_MARKERS
    >>> ACTION_MARKER in SECTION_MARKERS
    True
"""

from __future__ import annotations

#: The character every section marker starts with (the sandbox escapes it in names shown to the agent).
MARKER_START = "#"
#: Starts the reflection: the reflection model writes what follows it.
ANALYZE_MARKER = "# Analyze:"
#: Starts the labelled list of admissible actions; it also ends a reflection.
ACTIONS_MARKER = "# Actions:"
#: Ends the policy prompt: the next token is the chosen action's label.
ACTION_MARKER = "# Action:"
#: All section markers, in the order a policy prompt shows them.
SECTION_MARKERS = (ANALYZE_MARKER, ACTIONS_MARKER, ACTION_MARKER)
