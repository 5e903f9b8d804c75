"""The LLM teacher: its prompts, its place in the teacher stream and the data module, against a real HTTP server."""

import json
import logging
import re
from pathlib import Path

import pytest
from llm_fake_server import KEY, KEY_ENV, FakeChatServer, user_text

from datamodules.dataset import export_dataset, read_dataset
from datamodules.llm.client import ChatClient, EndpointConfig
from datamodules.llm.teacher import (
    CORRECTIVE_ASK,
    LLMTeacher,
    TeacherContext,
    clean_reflection,
    make_teacher,
    teacher_messages,
    turn_context,
)
from datamodules.prompt import recommended_action
from datamodules.rollout import TeacherStream, make_envs
from datamodules.rollout_datamodule import RolloutDataModule

ROOT = Path(__file__).resolve().parents[2]
TAXI = {"observation_format": "compact"}


def fake_teacher(body):
    """Reflects like a teacher that uses the spoiler and says when it was asked for a correction."""
    text = user_text(body)
    oracle = re.search(r'Spoiler: the best action to take next is "([^"]+)"', text).group(1)
    corrective = "CORRECTIVE " if "was a mistake" in text else ""
    return f'{corrective}The taxi should keep moving, so next I will "{oracle}".'


@pytest.fixture
def server():
    server = FakeChatServer(reply=fake_teacher, delay=0.02)
    yield server
    server.close()


def teacher_config(server, **extra):
    return {"base_url": server.base_url, "model": "fake-gpt", "api_key_env": KEY_ENV, **extra}


def files_text(directory):
    return "".join(p.read_text(errors="replace") for p in Path(directory).rglob("*") if p.is_file())


def test_prompts_give_the_spoiler_and_ask_for_a_correction_after_a_mistake():
    actions = ["go south", "go north", "go east"]
    first = teacher_messages(TeacherContext("Taxi at row 1.", actions, "go east"))
    system, user = first[0]["content"], first[1]["content"]
    assert "never mention" in system and '"spoiler"' in system and "quoted exactly" in system
    assert "Taxi at row 1." in user and "- go north" in user
    assert 'Spoiler: the best action to take next is "go east"' in user and "one-sentence analysis" in user

    after_good = teacher_messages(TeacherContext("Taxi at row 2.", actions, "go east", "go east", False))[1]["content"]
    after_bad = teacher_messages(TeacherContext("Taxi at row 2.", actions, "go east", "go west", True))[1]["content"]
    assert "Last action ------\ngo east" in after_good and "two-sentence reflection" in after_good
    assert "mistake" not in after_good
    assert CORRECTIVE_ASK in after_bad and "Last action ------\ngo west" in after_bad


def test_reflections_are_cleaned_so_they_cannot_end_the_analysis_early():
    assert clean_reflection("  Go south.\n\n# Actions:\nA. x  ") == "Go south. Actions: A. x"


def test_the_llm_teacher_writes_the_stream_s_reflections_all_lanes_concurrently(server, key, tmp_path):
    client = ChatClient(EndpointConfig.from_dict(teacher_config(server, max_concurrency=4)), cache_dir=tmp_path)
    stream = TeacherStream(make_envs("ReflectRL/DangerousTaxi-v0", TAXI, 4), seed=0, mistake_prob=0.3,
                           teacher=LLMTeacher(client))  # fmt: skip
    lanes = [stream.step() for _ in range(12)]
    turns = [t for turns in lanes for t in turns]
    assert all(recommended_action(t.reflection, t.actions) == t.oracle for t in turns)  # the spoiler was used
    # a corrective prompt exactly after a deliberate mistake in the same episode, lane by lane
    for before, after in zip(lanes, lanes[1:], strict=False):
        for previous, turn in zip(before, after, strict=True):
            same_episode = turn.seed == previous.seed and turn.step == previous.step + 1
            assert turn.reflection.startswith("CORRECTIVE") == (same_episode and previous.negative)
    assert any(t.negative for t in turns) and any(t.reflection.startswith("CORRECTIVE") for t in turns)
    assert server.max_in_flight > 1, "the lanes' requests were not sent together"
    assert client.usage["prompt_tokens"] > 0


def test_the_same_episodes_cost_nothing_the_second_time(server, key, tmp_path):
    def play():
        teacher = make_teacher(teacher_config(server), cache_dir=tmp_path)
        stream = TeacherStream(make_envs("ReflectRL/DangerousTaxi-v0", TAXI, 3), seed=5, mistake_prob=0.2,
                               teacher=teacher)  # fmt: skip
        return [(t.observation, t.reflection) for episode in stream.episodes(4) for t in episode]

    first = play()
    sent = len(server.requests)
    assert sent > 0 and play() == first and len(server.requests) == sent


def test_the_data_module_checks_the_teacher_before_anything_runs(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ValueError, match=KEY_ENV):
        RolloutDataModule(env_kwargs=TAXI, num_envs=2, teacher=teacher_config(server))
    with pytest.raises(ValueError, match="teacher must be 'rules'"):
        RolloutDataModule(env_kwargs=TAXI, num_envs=2, teacher="gpt-4")
    with pytest.raises(ValueError, match="Unknown endpoint option"):
        RolloutDataModule(env_kwargs=TAXI, num_envs=2, teacher={"model": "m", "api_key_env": None, "temp": 1})
    assert not server.requests


def small_fit(tmp_path, *extra):
    return [
        "fit", "--config", str(ROOT / "configs" / "dangerous_taxi" / "reflection_sft.yaml"),
        "--trainer.max_steps=2", "--trainer.val_check_interval=2", "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={tmp_path}", f"--model.init_args.export_dir={tmp_path / 'export'}",
        "--model.init_args.backbone.tiny.n_layer=1", "--model.init_args.backbone.tiny.n_embd=32",
        "--model.init_args.backbone.tiny.n_head=2", "--model.init_args.backbone.tiny.vocab_size=400",
        "--model.init_args.backbone.tiny.tokenizer_samples=10", "--model.init_args.generate_samples=4",
        "--data.num_envs=2", "--data.batch_size=4", "--data.val_episodes=1", "--data.teacher_episodes=2",
        "--data.max_reflection_tokens=12", *extra,
    ]  # fmt: skip


def test_stage_one_trains_on_the_llm_teacher_and_a_rerun_costs_nothing(server, key, tmp_path, caplog):
    from lightning_modules.cli import main

    teacher = "--data.teacher=" + json.dumps(teacher_config(server, max_concurrency=2))
    with caplog.at_level(logging.INFO):
        assert main(small_fit(tmp_path, teacher)) == 0
    sent = len(server.requests)
    assert sent > 0
    cache = tmp_path / "llm_cache"  # under the logger's save_dir
    assert any(cache.rglob("*.json"))
    hparams = (tmp_path / "reflection_sft" / "version_0" / "hparams.yaml").read_text()
    assert KEY_ENV in hparams and server.base_url in hparams
    assert re.search(r"LLM teacher: fake-gpt .* \d+ prompt \+ \d+ completion tokens", caplog.text)  # tokens logged

    assert main(small_fit(tmp_path, teacher)) == 0  # the same episodes again: all from the cache
    assert len(server.requests) == sent
    assert KEY not in files_text(tmp_path)


def test_a_missing_key_stops_fit_with_one_line_before_training(server, tmp_path, monkeypatch, capsys):
    from lightning_modules.cli import main

    monkeypatch.delenv(KEY_ENV, raising=False)
    code = main(small_fit(tmp_path, "--data.teacher=" + json.dumps(teacher_config(server))))
    err = capsys.readouterr().err
    assert code == 1 and KEY_ENV in err and "Traceback" not in err
    assert not server.requests and not list(tmp_path.rglob("*.ckpt"))


def test_export_dataset_with_the_llm_teacher_records_its_reflections_and_no_key(server, key, tmp_path, capsys):
    from lightning_modules.cli import main

    output = tmp_path / "data" / "taxi_llm.jsonl"
    args = ["export-dataset", "--config", str(ROOT / "configs" / "dangerous_taxi" / "reflection_sft.yaml"),
            "--episodes", "3", "--output", str(output), "--base-url", server.base_url, "--model", "fake-gpt",
            "--api-key-env", KEY_ENV, "--max-concurrency", "4", "--data.num_envs=3"]  # fmt: skip
    assert main(args) == 0
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert {r["teacher"] for r in records} == {"llm:fake-gpt"}
    assert all(r["reflection"].endswith(f'next I will "{r["oracle_action"]}".') for r in records)
    assert any(r["reflection"].startswith("CORRECTIVE") for r in records)
    err = capsys.readouterr().err
    assert "3 episodes" in err and "prompt +" in err and "completion tokens" in err
    assert any((output.parent / "llm_cache").rglob("*.json"))  # the cache is beside the output by default
    assert KEY not in files_text(tmp_path)

    sent = len(server.requests)
    assert main(args) == 0 and len(server.requests) == sent  # a rerun costs nothing


def test_export_dataset_asks_the_llm_about_the_kept_turns_and_nothing_else(server, key, tmp_path, capsys):
    """The config plays 16 lanes; 3 episodes are wanted. Before, the teacher reflected on every lane's turns."""
    from lightning_modules.cli import main

    output = tmp_path / "taxi_llm.jsonl"
    args = ["export-dataset", "--config", str(ROOT / "configs" / "dangerous_taxi" / "reflection_sft.yaml"),
            "--episodes", "3", "--output", str(output), "--base-url", server.base_url, "--model", "fake-gpt",
            "--api-key-env", KEY_ENV]  # fmt: skip
    assert main(args) == 0
    turns = read_dataset(output)
    assert len({t.seed for t in turns}) == 3
    previous = [turns[i - 1] if i and turns[i - 1].seed == t.seed else None for i, t in enumerate(turns)]
    asked = {json.dumps(teacher_messages(turn_context(t, p))) for t, p in zip(turns, previous, strict=True)}
    sent = [json.dumps(body["messages"]) for body in server.requests]
    assert len(sent) == len(asked) <= len(turns) and set(sent) == asked  # one request per distinct kept turn
    err = capsys.readouterr().err
    assert re.search(rf"per kept turn: {len(sent) / len(turns):.2f} requests, \d+ prompt \+ \d+ completion tokens", err)


def test_the_exported_llm_dataset_is_what_teacher_episodes_trains_on_and_fills_its_cache(server, key, tmp_path):
    def datamodule(**extra):
        return RolloutDataModule(env_kwargs=TAXI, num_envs=3, mistake_prob=0.3, seed=11,
                                 teacher=teacher_config(server), **extra)  # fmt: skip

    exporting = datamodule()
    exporting.llm_cache_dir = str(tmp_path / "cache")
    summary = export_dataset(exporting, 4, tmp_path / "taxi.jsonl")
    exported = read_dataset(tmp_path / "taxi.jsonl")
    assert summary["usage"]["requests"] == len(server.requests) <= len(exported) == summary["turns"]

    on_the_fly = datamodule(teacher_episodes=4)
    on_the_fly.llm_cache_dir = str(tmp_path / "cache")
    played = on_the_fly.fixed_turns()
    fields = ("seed", "step", "observation", "actions", "reflection", "oracle", "negative", "taken")
    assert [[getattr(t, f) for f in fields] for t in exported] == [[getattr(t, f) for f in fields] for t in played]
    assert on_the_fly.llm_client.usage["cache_hits"] == summary["usage"]["requests"]  # the kept turns cost nothing
    assert len(server.requests) == summary["usage"]["requests"]  # and no discarded lane asked for more

    uncached = datamodule(teacher_episodes=4, val_episodes=2)
    uncached.llm_cache_dir = str(tmp_path / "other_cache")
    asked = len(server.requests)
    held_out = uncached.eval_turns("val")
    assert 0 < len(server.requests) - asked <= len(held_out)  # held-out sets ask about kept turns only, too


@pytest.mark.parametrize("problem", ["unreachable", "bad key", "bad request"])
def test_export_dataset_ends_an_endpoint_error_in_one_line_with_the_fix(problem, server, key, tmp_path, capsys):
    from lightning_modules.cli import main

    base_url = server.base_url
    if problem == "unreachable":
        base_url = base_url.replace(str(server.httpd.server_address[1]), "9")  # the discard port: nobody listens
    elif problem == "bad key":
        server.push(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}})
    else:
        server.push(400, {"error": {"message": "max_tokens is too large for this model"}})
    args = ["export-dataset", "--config", str(ROOT / "configs" / "dangerous_taxi" / "reflection_sft.yaml"),
            "--episodes", "1", "--output", str(tmp_path / "t.jsonl"), "--base-url", base_url, "--model", "fake-gpt",
            "--api-key-env", KEY_ENV, "--max-retries", "1", "--data.num_envs=1"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and KEY not in err and not (tmp_path / "t.jsonl").exists()
    expected = {
        "unreachable": "Could not reach http://127.0.0.1:9/v1/chat/completions after 2 attempt(s): ConnectError: ",
        "bad key": f"answered HTTP 401: Incorrect API key provided: ***; check the API key in ${KEY_ENV}",
        "bad request": "answered HTTP 400: max_tokens is too large for this model; check the request options",
    }[problem]
    assert expected in err
