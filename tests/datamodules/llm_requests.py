"""Requests the LLM teacher spends on ``reflect-rl export-dataset``, measured against the loopback chat server.

Run from the repository root: ``.venv/bin/python tests/datamodules/llm_requests.py``. It exports the DangerousTaxi
stage-1 config's teacher rollout (16 lanes) with a fake LLM teacher that takes 20 ms per answer: ``--episodes 3``
with ``--max-concurrency 8``, the same again (a rerun, all from the cache), then ``--episodes 20`` with
``--max-concurrency 4`` into a fresh cache. Per run it prints the requests the server received, the most it had in
flight at once, the kept turns and the requests and tokens per kept turn. The README quotes its output.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

from llm_fake_server import KEY, KEY_ENV, FakeChatServer, user_text  # noqa: E402

from lightning_modules.cli import main  # noqa: E402


def teacher(body: dict) -> str:
    oracle = re.search(r'Spoiler: the best action to take next is "([^"]+)"', user_text(body)).group(1)
    return f'The taxi should keep moving, so next I will "{oracle}".'


def export(server: FakeChatServer, output: Path, episodes: int, concurrency: int) -> dict:
    sent, server.max_in_flight = len(server.requests), 0
    args = ["export-dataset", "--config", str(ROOT / "configs/dangerous_taxi/reflection_sft.yaml"),
            "--episodes", str(episodes), "--output", str(output), "--base-url", server.base_url,
            "--model", "fake-gpt", "--api-key-env", KEY_ENV, "--max-concurrency", str(concurrency)]  # fmt: skip
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(args) == 0, err.getvalue()
    turns = len(output.read_text().splitlines())
    tokens = [int(n) for n in re.search(r"(\d+) prompt \+ (\d+) completion tokens", err.getvalue()).groups()]
    requests = len(server.requests) - sent
    return {
        "episodes": episodes,
        "max_concurrency": concurrency,
        "requests": requests,
        "max_in_flight": server.max_in_flight,
        "kept_turns": turns,
        "requests_per_turn": round(requests / turns, 2),
        "prompt_tokens_per_turn": round(tokens[0] / turns),
        "completion_tokens_per_turn": round(tokens[1] / turns),
    }


if __name__ == "__main__":
    os.environ[KEY_ENV] = KEY
    server = FakeChatServer(reply=teacher, delay=0.02)
    try:
        with tempfile.TemporaryDirectory() as directory:
            output = Path(directory) / "first" / "taxi.jsonl"  # the cache goes beside the output
            rows = [export(server, output, 3, 8), export(server, output, 3, 8)]
            rows.append(export(server, Path(directory) / "more" / "taxi.jsonl", 20, 4))
    finally:
        server.close()
    print("| run | episodes | max_concurrency | requests | most in flight | kept turns | requests / turn "
          "| prompt + completion tokens / turn |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, row in zip(("first", "rerun (cache)", "more episodes"), rows, strict=True):
        print(f"| {name} | {row['episodes']} | {row['max_concurrency']} | {row['requests']} | {row['max_in_flight']} "
              f"| {row['kept_turns']} | {row['requests_per_turn']} | {row['prompt_tokens_per_turn']} + "
              f"{row['completion_tokens_per_turn']} |")  # fmt: skip
    print(json.dumps(rows))
