"""Merging a newly written page into the previous one, which keeps the sections it does not rewrite."""

from __future__ import annotations

#: Order of the environments' sections on the page.
ENV_ORDER = ("dangerous_taxi", "auto_explore", "alfworld")
#: The line after which the page is written by hand; the comparison keeps everything after it.
ANALYSIS_MARKER = "<!-- Written by hand below this line; compare.py keeps it when it rewrites the page. -->"
GPU_SECTION = "GPU profiles"


def split_sections(page: str) -> tuple[str, dict[str, str], str]:
    """A page as (text before the first ``## `` heading, ``heading -> section``, hand-written part with its marker)."""
    generated, marker, analysis = page.partition(ANALYSIS_MARKER)
    head, *parts = generated.split("\n## ")
    sections = {part.split("\n", 1)[0]: "## " + part.rstrip("\n") + "\n" for part in parts}
    return head.rstrip("\n") + "\n", sections, marker + analysis


def merge_pages(previous: str, page: str) -> str:
    """The new page, plus the environment sections and the hand-written part of ``previous``.

    The sections of ``previous`` that the new page has none of stay: an invocation that ran one environment leaves
    the others' results where they are (runs/ is not kept). Environments come in :data:`ENV_ORDER`, others after
    them by name, and the GPU profiles last.
    """
    head, sections, _ = split_sections(page)
    _, kept, analysis = split_sections(previous)
    merged = {**{k: v for k, v in kept.items() if k != GPU_SECTION}, **sections}
    order = [*ENV_ORDER, *sorted(k for k in merged if k not in ENV_ORDER and k != GPU_SECTION), GPU_SECTION]
    body = "\n".join(merged[k] for k in order if k in merged)
    return f"{head}\n{body}" + (f"\n{analysis}" if analysis else "")
