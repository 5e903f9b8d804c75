"""The declared contract between the rollout datamodule, the modules and the callbacks."""

import ast
from pathlib import Path

import pytest

from datamodules import RolloutDataModule
from datamodules.protocol import (
    CurriculumTarget,
    MistakeTarget,
    ReplayOwner,
    RolloutSource,
    protocol_members,
    require,
)
from lightning_modules import ReflectRLModule

ROOT = Path(__file__).resolve().parents[2]


def test_the_rollout_datamodule_and_the_rl_module_keep_the_contract():
    datamodule = RolloutDataModule(num_envs=1)
    for protocol in (CurriculumTarget, MistakeTarget, RolloutSource):
        assert isinstance(datamodule, protocol)
        assert require(datamodule, protocol, "test") is datamodule
    both = {*protocol_members(CurriculumTarget), *protocol_members(MistakeTarget)}
    assert set(protocol_members(RolloutSource)) == both
    assert protocol_members(CurriculumTarget) == ("env_id", "stage", "known_stages", "set_stage")
    assert datamodule.env_id == "ReflectRL/DangerousTaxi-v0"
    assert issubclass(ReflectRLModule, ReplayOwner)
    assert not isinstance(object(), ReplayOwner)


@pytest.mark.parametrize(
    ("settings", "examples", "streams"),
    [
        ({}, "policy", True),
        ({}, "reflection", True),
        ({"teacher_episodes": 2}, "policy", False),
        ({}, "rollout", False),
    ],
)
def test_streams_teacher_turns_says_whether_a_new_mistake_probability_reaches_training(settings, examples, streams):
    datamodule = RolloutDataModule(num_envs=1, **settings)
    datamodule.examples = examples
    assert datamodule.streams_teacher_turns is streams


def test_the_tokenizer_sample_has_corrective_reflections_without_negative_examples(monkeypatch):
    from datamodules import rollout_datamodule

    played = []
    real = rollout_datamodule.TeacherStream

    def spy(*args, **kwargs):
        played.append(kwargs["mistake_prob"])
        return real(*args, **kwargs)

    monkeypatch.setattr(rollout_datamodule, "TeacherStream", spy)
    RolloutDataModule(num_envs=1, mistake_prob=0.0).sample_texts(1)
    RolloutDataModule(num_envs=1, mistake_prob=0.5).sample_texts(1)
    assert played == [rollout_datamodule.TOKENIZER_SAMPLE_MIN_MISTAKE_PROB, 0.5]


def _project_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names & {"environments", "datamodules", "lightning_modules", "callbacks", "benchmarks"}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("environments", {"datamodules", "lightning_modules", "callbacks", "benchmarks"}),
        ("datamodules", {"lightning_modules", "callbacks", "benchmarks"}),
        ("callbacks", {"lightning_modules", "benchmarks"}),
        ("lightning_modules", {"callbacks", "benchmarks"}),
    ],
)
def test_imports_go_down_the_layers(package, forbidden):
    wrong = {str(p.relative_to(ROOT)): _project_imports(p) & forbidden for p in (ROOT / package).rglob("*.py")}
    assert not {path: names for path, names in wrong.items() if names}
