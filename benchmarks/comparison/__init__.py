"""The parts of ``benchmarks/compare.py``, one idea each.

* ``methods``: the methods compared, their pipeline variants and the paper's numbers;
* ``runs``: the stage configs of a variant and seed, launching (or reusing) its pipeline run, finding finished runs;
* ``tensorboard``: reading a stage's logged scalars and its time span;
* ``curves``: training curves and validation timelines built from those scalars;
* ``summaries``: one finished run summarised into a small JSON file, and those files read back;
* ``stats``: mean and standard deviation over seeds, as the tables print them;
* ``plots``: the training-curve and validation-timeline pictures;
* ``profiles``: the parameter counts of the GPU profiles;
* ``report``: the Markdown page written from the summaries;
* ``page``: merging a new page into the previous one.
"""

from pathlib import Path

#: The repository's root: configs are read from it, pipelines run in it, paths on the page are shown relative to it.
ROOT = Path(__file__).resolve().parents[2]
