"""What reading a file shows in AutoExplore v1, and the generator's use of it."""

from collections import Counter
from pathlib import Path

import pytest
from auto_explore_fixtures import make_repo, write

from environments.auto_explore import generate_tasks
from environments.auto_explore.file_view import read_file_view, shows_evidence, table_header
from environments.auto_explore.sandbox import Sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "data",
    [
        b"id,name,price\n1,a,2\n",
        b"id,name,price\r\n1,a,2\r\n",
        b"id,name,price\r1,a,2\r",
        b"\xef\xbb\xbfid,name,price\n",
        b"# exported 2020\n#\n\nid,name,price\n1,a,2\n",
        b'"id", "name" ,"price"\r1,a,2',
    ],
)
def test_table_header_accepts_line_endings_bom_comments_and_quotes(data):
    assert table_header(data, ",") == ["id", "name", "price"]


def test_table_header_keeps_a_quoted_delimiter_and_reads_tsv():
    assert table_header(b'"a,b",c\n', ",") == ["a,b", "c"]
    assert table_header(b"# c\nx\ty\n", "\t") == ["x", "y"]
    assert table_header(b"# only comments\n", ",") == []


def test_python_outline_nests_methods_and_falls_back_to_the_head(tmp_path):
    source = (
        "import os\n\n\nclass Engine:\n    def start(self):\n        pass\n\n    def _hidden(self):\n        pass\n"
    )
    write(tmp_path / "m.py", source + "\n\ndef run_engine():\n    pass\n\n\ndef _private():\n    pass\n")
    write(tmp_path / "broken.py", "def ok(:\n    first line of the head\n")
    sandbox = Sandbox(tmp_path)
    view = read_file_view(sandbox, ("m.py",), 4, 300)
    assert view.form == "outline"
    assert "L4 class Engine: start L5" in view.text and "L12 def run_engine" in view.text
    assert "_hidden" not in view.text and "_private" not in view.text
    assert view.items == {("class", "Engine"), ("function", "run_engine")}
    broken = read_file_view(sandbox, ("broken.py",), 4, 300)
    assert broken.form == "head" and "first line of the head" in broken.text and not broken.items


def test_outline_fits_the_budget_dropping_methods_then_lines(tmp_path):
    methods = "".join(f"    def method_{i}(self):\n        pass\n" for i in range(30))
    functions = "".join(f"def function_{i:02d}():\n    pass\n" for i in range(40))
    write(tmp_path / "big.py", f"class Big:\n{methods}\n{functions}")
    view = read_file_view(Sandbox(tmp_path), ("big.py",), 4, 200)
    assert len(view.text) <= 200
    assert "class Big (30 methods)" in view.text and "method_0" not in view.text
    assert "more)" in view.text
    shown = [name for kind, name in view.items if kind == "function"]
    assert all(f"def {name}" in view.text for name in shown)
    assert ("function", "function_39") not in view.items


def test_headings_headers_and_heads(tmp_path):
    repo = make_repo(tmp_path)
    sandbox = Sandbox(repo)
    guide = read_file_view(sandbox, ("docs", "guide.md"), 4, 300)
    assert guide.form == "headings" and "Not A Heading" not in guide.text
    assert shows_evidence(guide, "heading", "configuration  OPTIONS")
    prices = read_file_view(sandbox, ("data", "prices.csv"), 4, 300)
    assert shows_evidence(prices, "column", "closing_price") and not shows_evidence(prices, "column", "region")
    write(repo / "notes.txt", "line one\nline two\n")
    head = read_file_view(sandbox, ("notes.txt",), 1, 300)
    assert head.form == "head" and "line one" in head.text and "line two" not in head.text


def test_generator_reads_cr_only_and_commented_headers_and_skips_shared_columns(tmp_path):
    repo = tmp_path / "tables"
    write(repo / "a" / "cr.csv", "shipment_weight,origin_port\r1,x\r")
    write(repo / "b" / "commented.csv", "# source: a survey\n# 2021\nrespondent_age,zip_code\n30,1\n")
    write(repo / "b" / "twin.csv", "zip_code,county_name\n1,x\n")
    tasks = {task.subject: task.targets for task in generate_tasks(repo, kinds=("column",), max_tasks=50)}
    assert tasks["shipment_weight"] == ["a/cr.csv"] and tasks["origin_port"] == ["a/cr.csv"]
    assert tasks["respondent_age"] == ["b/commented.csv"] and tasks["county_name"] == ["b/twin.csv"]
    assert "zip_code" not in tasks and not any(subject.startswith("#") for subject in tasks)


def test_generator_drops_questions_whose_evidence_is_not_shown_and_says_why(tmp_path):
    repo = tmp_path / "deep_file"
    functions = "".join(f"def function_number_{i:02d}():\n    pass\n" for i in range(40))
    write(repo / "many.py", functions)
    dropped: Counter[str] = Counter()
    tasks = generate_tasks(repo, max_tasks=100, max_per_file=100, evidence_chars=200, dropped=dropped)
    everything = generate_tasks(repo, max_tasks=100, max_per_file=100)
    assert 0 < len(tasks) < len(everything) == 40
    assert sum(dropped.values()) == len(everything) - len(tasks)
    assert list(dropped) == ["function not shown when the file is read (200 characters)"]


@pytest.mark.parametrize("cat_chars", [200, 600])
def test_evidence_is_shown_for_generated_tasks_of_real_trees(tmp_path, cat_chars):
    """The project's own source tree and a built one: every generated task's target shows its evidence."""
    for root in (REPO_ROOT, make_repo(tmp_path)):
        dropped: Counter[str] = Counter()
        tasks = generate_tasks(root, max_tasks=60, evidence_chars=cat_chars, dropped=dropped)
        assert len(tasks) >= 10
        sandbox = Sandbox(root)
        shown = sum(
            shows_evidence(read_file_view(sandbox, task.target_parts[0], 4, cat_chars), task.kind, task.subject)
            for task in tasks
        )
        assert shown >= 0.95 * len(tasks)
