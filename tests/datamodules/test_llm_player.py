"""LLM players on our held-out episodes, against a real chat-completions server on 127.0.0.1."""

import json
import re
from pathlib import Path

import pytest
from llm_fake_server import KEY, KEY_ENV, FakeChatServer, user_text

from datamodules.llm.client import ChatClient, EndpointConfig
from datamodules.prompt import ACTION_LABELS, recommended_action
from datamodules.rollout_datamodule import RolloutDataModule
from lightning_modules.agent import TEACHER
from lightning_modules.evaluation import evaluate_player
from lightning_modules.llm_agent import LLMAgent, parse_label

ROOT = Path(__file__).resolve().parents[2]
ANALYSIS = "I should look at where the passenger waits before I move."
ACTIONS = ["go south", "go north", "go east", "go west", "pick up the passenger", "drop off the passenger"]


def evaluate(agent, datamodule, episodes, sampled=False):
    """The test split's metrics and records, greedy (and sampled)."""
    modes = ("greedy", "sampled") if sampled else ("greedy",)
    evaluation = evaluate_player(agent, datamodule, "test", episodes, modes)
    return evaluation.metrics, evaluation.records


def read_prompt(text):
    """The analysis and the labelled actions of a policy prompt (as our models read it)."""
    analysis = re.search(r"# Analyze:\n(.*?)\n# Actions:", text, re.S)
    listed = text.split("# Actions:\n", 1)[1].split("\n# Action:", 1)[0].splitlines()
    return (analysis.group(1) if analysis else None), [line.split(". ", 1)[1] for line in listed]


def fake_llm(body):
    """Follows the recommendation of the analysis it reads, answering with a decorated label; reflects on request."""
    if "Analyze the current situation" in body["messages"][0]["content"]:
        return ANALYSIS
    analysis, actions = read_prompt(user_text(body))
    choice = recommended_action(analysis or "", actions)
    return f" {ACTION_LABELS[choice if choice is not None else 0]}."


@pytest.fixture
def server():
    server = FakeChatServer(reply=fake_llm, delay=0.01)
    yield server
    server.close()


def client(server, cache_dir=None, **extra):
    return ChatClient(
        EndpointConfig(base_url=server.base_url, model="fake-gpt", api_key_env=KEY_ENV, **extra),
        cache_dir=cache_dir,
    )


def taxi_datamodule(**overrides):
    return RolloutDataModule.from_config(
        [ROOT / "configs" / "dangerous_taxi" / "reflect_rl.yaml"], {"num_envs": 4, **overrides}
    )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("B", 1), (" B.", 1), ("(C)", 2), ("**D**", 3), ("B. go north", 1), ("C) go east", 2), ("Answer: E", 4),
        ("The answer is F.", 5), ("b", 1), ("go west", 3), ("Go West.", 3), ("A", 0),
        ("G", None), ("", None), ("I think B", None), ("A good move is to go north", None),
        ("Let me think about it.", None), ("Be careful", None), ("42", None),
    ],
)  # fmt: skip
def test_answers_are_parsed_as_labels_and_anything_else_is_invalid(answer, expected):
    assert parse_label(answer, ACTIONS) == expected


def test_the_llm_policy_plays_the_held_out_seeds_reading_the_teacher(server, key, tmp_path):
    datamodule = taxi_datamodule()
    agent = LLMAgent(client(server, cache_dir=tmp_path), reflection=TEACHER)
    metrics, records = evaluate(agent, datamodule, 6)
    assert [r["seed"] for r in records] == datamodule.eval_seeds("test", 6)  # the data module's held-out seeds
    assert metrics["test/success_rate"] == 1.0 and metrics["test/invalid_rate"] == 0.0
    assert metrics["test/success_rate_ci_low"] > 0.5 and metrics["test/success_rate_ci_high"] == 1.0
    assert metrics["test/episode_length"] > 1
    prompt = user_text(server.requests[0])
    analysis, actions = read_prompt(prompt)
    assert prompt.endswith("# Action:") and analysis and actions == ACTIONS and "\nA. go south\n" in prompt
    assert server.max_in_flight > 1, "the lanes' requests were not sent together"
    assert all(body["temperature"] == 0.0 for body in server.requests)  # greedy


def test_an_llm_reflection_model_writes_the_analysis_the_policy_reads(server, key):
    agent = LLMAgent(client(server), reflection=client(server))
    _, records = evaluate(agent, taxi_datamodule(), 2)
    policy_prompts = [user_text(b) for b in server.requests if "# Actions:" in user_text(b)]
    reflection_prompts = [user_text(b) for b in server.requests if "# Actions:" not in user_text(b)]
    assert policy_prompts and all(f"# Analyze:\n{ANALYSIS}\n# Actions:" in p for p in policy_prompts)
    assert reflection_prompts and all(p.endswith("# Analyze:\n") for p in reflection_prompts)
    assert records[0]["turns"][0]["reflection"] == ANALYSIS


def test_an_unparseable_answer_ends_a_taxi_ride_as_an_invalid_action(key):
    server = FakeChatServer(reply=lambda body: "I would rather not say.")
    try:
        agent = LLMAgent(client(server))
        metrics, records = evaluate(agent, taxi_datamodule(), 3, sampled=True)
    finally:
        server.close()
    assert metrics["test/success_rate"] == 0.0 and metrics["test/episode_length"] == 1.0
    assert metrics["test/invalid_rate"] == 1.0 and metrics["test/invalid_rate_sampled"] == 1.0
    turn = records[0]["turns"][0]
    assert turn["invalid_action"] and turn["action"] is None and turn["extra"]["answer"] == "I would rather not say."
    assert {b["temperature"] for b in server.requests} == {0.0, 1.0}  # greedy, then sampled


def test_an_unparseable_answer_is_a_penalised_invalid_action_in_auto_explore(key, tmp_path):
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "main.py").write_text("def main():\n    pass\n")
    (repo / "README.md").write_text("# Readme\n")
    task = {"task_id": "t", "root": str(repo), "question": "Which file defines `main`?", "targets": ["src/main.py"]}
    datamodule = RolloutDataModule(
        "ReflectRL/AutoExplore-v0", {"tasks": [task], "max_actions": 8, "horizon": 3}, num_envs=2
    )
    server = FakeChatServer(reply=lambda body: "Z")  # a label, but not an admissible one
    try:
        metrics, records = evaluate(LLMAgent(client(server)), datamodule, 2)
    finally:
        server.close()
    assert metrics["test/episode_length"] == 3.0 and metrics["test/invalid_rate"] == 1.0  # the episode goes on
    assert metrics["test/return"] == pytest.approx(3 * -0.1 - 1.0)  # the env's invalid-action and timeout rewards
    assert all(turn["invalid_action"] for turn in records[0]["turns"])


def test_evaluate_llm_prints_the_held_out_table_next_to_other_results(server, key, tmp_path, capsys):
    from lightning_modules.cli import main

    ours = tmp_path / "pipeline_results.json"
    ours.write_text(json.dumps({"results": {"Reflect-RL": {
        "test/success_rate": 0.81, "test/success_rate_ci_low": 0.72, "test/success_rate_ci_high": 0.87,
        "test/success_rate_sampled": 0.77, "test/return": 0.23, "test/episode_length": 10.9}}}))  # fmt: skip
    output = tmp_path / "llm_eval"
    args = ["evaluate-llm", "--env", "dangerous_taxi", "--base-url", server.base_url, "--model", "fake-gpt",
            "--api-key-env", KEY_ENV, "--episodes", "4", "--reflection", "teacher", "--output-dir", str(output),
            "--compare", str(ours), "--data.num_envs=2"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Held-out test (4 episodes, dangerous_taxi" in out and "greedy success (95% CI)" in out
    assert re.search(r"fake-gpt \+ teacher reflection\s+100% \(\d+%-100%\)", out)
    assert re.search(r"Reflect-RL\s+81% \(72%-87%\)\s+77%\s+0.23\s+10.9\s+-", out)
    saved = json.loads((output / "results.json").read_text())
    assert saved["results"]["fake-gpt + teacher reflection"]["test/success_rate"] == 1.0
    assert (output / "transcripts_fake-gpt_teacher_reflection.jsonl").is_file()

    sent = len(server.requests)
    assert main([*args, "--name", "again"]) == 0 and len(server.requests) == sent  # all from the cache
    assert set(json.loads((output / "results.json").read_text())["results"]) == {
        "fake-gpt + teacher reflection", "again"}  # fmt: skip
    assert KEY not in "".join(p.read_text() for p in output.rglob("*") if p.is_file())


def test_evaluate_llm_errors_are_one_line(server, tmp_path, monkeypatch, capsys):
    from lightning_modules.cli import main

    monkeypatch.delenv(KEY_ENV, raising=False)
    base = ["evaluate-llm", "--model", "fake-gpt", "--episodes", "1", "--output-dir", str(tmp_path), "--max-retries",
            "1", "--data.num_envs=1"]  # fmt: skip
    assert main([*base, "--base-url", server.base_url, "--api-key-env", KEY_ENV]) == 1
    assert f"environment variable {KEY_ENV}, which is not set" in capsys.readouterr().err

    assert main([*base, "--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "none"]) == 1
    err = capsys.readouterr().err
    assert "reflect-rl evaluate-llm: error: Could not reach http://127.0.0.1:9/v1/chat/completions" in err
    assert "Traceback" not in err
