"""RolloutDataModule: training data played on the fly from environments.

In teacher mode (the SFT stages) it plays a batch of environments in lock-step with the teacher's behaviour policy and
yields tokenised examples: reflection examples (loss on the reflection tokens only) or policy examples (target = the
oracle action's label). The teacher is the environment's rule-based one or a model behind an OpenAI-compatible
endpoint (``teacher: {base_url: ..., model: ...}``); the SFT data can also come from a JSONL file (``dataset``, see
:mod:`datamodules.dataset`). In the SFT stages validation and test are fixed sets of teacher episodes from held-out
seeds (and held-out tasks through ``val_env_kwargs`` / ``test_env_kwargs``); in policy mode (RLFT) they are one item
each, and the module plays the held-out episodes itself (:func:`lightning_modules.evaluation.evaluate_player`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, IterableDataset

from datamodules.dataset import episode_count, first_episodes, read_dataset
from datamodules.encoding import PromptEncoder
from datamodules.llm.teacher import RULES, LLMTeacher, check_teacher_spec, make_teacher
from datamodules.prompt import format_action_answer, format_policy_prompt, format_reflection_prompt
from datamodules.rollout import TeacherStream, Turn, make_envs
from datamodules.stage_config import load_stage_config
from environments.jsonl import regular_file

ExampleKind = Literal["reflection", "policy", "rollout"]
#: Training seeds of DDP rank ``r`` start at ``seed + r * RANK_SEED_STRIDE``: far above the held-out seeds
#: (``val_seed``, ``test_seed``, a few million), so no rank ever trains on a validation or test episode.
RANK_SEED_STRIDE = 100_000_000
#: The least mistake probability of the teacher episodes a tokenizer is trained on
#: (:meth:`RolloutDataModule.sample_texts`): corrective reflections only follow deliberate mistakes, so their words are
#: in the sample even when ``mistake_prob`` is 0 (a stage without negative examples, or the RL stage), and one tokenizer
#: fits every stage.
TOKENIZER_SAMPLE_MIN_MISTAKE_PROB = 0.2


class _TeacherBatches(IterableDataset):
    """Endless batches of tokenised teacher turns (built in the training process, so it sees live settings).

    With ``teacher_episodes`` the teacher plays that many episodes once, and with ``dataset`` the turns come from
    the file; the batches then cycle through those turns in a fresh random order each pass (a fixed SFT budget, like
    the paper's few hundred GPT-4 trajectories). Otherwise every batch comes from new episodes.
    """

    def __init__(self, datamodule: RolloutDataModule) -> None:
        self.datamodule = datamodule

    def _wanted(self, turn: Turn) -> bool:
        return self.datamodule.examples != "reflection" or bool(turn.reflection)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        dm = self.datamodule
        size = dm.hparams.batch_size
        fixed = dm.fixed_turns()
        if fixed is not None:
            turns = [t for t in fixed if self._wanted(t)]
            if len(turns) < size:
                source = f"turns with a reflection in {dm.hparams.dataset}" if dm.hparams.dataset else "teacher turns"
                raise ValueError(f"{len(turns)} {source} < batch_size={size}: use more episodes or a smaller batch.")
            rng = np.random.default_rng(dm.hparams.seed + dm._rank())
            while True:
                order = rng.permutation(len(turns))
                for start in range(0, len(order) - size + 1, size):
                    yield dm.encode([turns[i] for i in order[start : start + size]])
        buffer: list[Turn] = []
        batches = 0
        for turn in dm.train_stream():
            if self._wanted(turn):
                buffer.append(turn)
            if len(buffer) == size:
                yield dm.encode(buffer)
                buffer = []
                batches += 1
                if batches % 100 == 0:
                    dm.log_teacher_usage()


class _PolicyRollouts(IterableDataset):
    """Endless on-policy rollout work: each item is the environments and the ``episodes_per_step`` seeds to play.

    The item holds no episodes: the RL module plays them in its ``training_step`` (``ReflectRLModule.rollout``), because
    Lightning fetches each batch one step ahead, and episodes played here would come from the policy before the last
    update.
    """

    def __init__(self, datamodule: RolloutDataModule) -> None:
        self.datamodule = datamodule

    def __iter__(self) -> Iterator[dict[str, Any]]:
        dm = self.datamodule
        hp = dm.hparams
        envs = make_envs(hp.env_id, hp.env_kwargs, min(hp.num_envs, hp.episodes_per_step))
        next_seed = hp.seed + dm._rank() * RANK_SEED_STRIDE
        while True:
            yield {"envs": envs, "seeds": list(range(next_seed, next_seed + hp.episodes_per_step))}
            next_seed += hp.episodes_per_step


class RolloutDataModule(L.LightningDataModule):
    """Plays environments on the fly and yields training batches for the running LightningModule.

    The module binds its tokenizer and says what it trains on with :meth:`bind` (the SFT modules do it in
    ``setup``), so the datamodule's config only describes the environments and the data. In policy mode (RLFT,
    ``examples="rollout"``) each training item is the environments and the ``episodes_per_step`` seeds of one step,
    which the module plays with its live policy in the curriculum stage :attr:`stage`.

    Args:
        env_id: A registered gymnasium id (``ReflectRL/DangerousTaxi-v0``, ...) or your own environment class as
            ``package.module:ClassName`` (see ``examples/text_maze``).
        env_kwargs: Constructor arguments of the training environments.
        val_env_kwargs: Overrides for the validation environments (e.g. AutoExplore tasks from held-out repositories).
        test_env_kwargs: Overrides for the test environments (e.g. the test split's repositories).
        stage: Curriculum stage of the episodes (``None``: the environment's default); see :meth:`set_stage`.
        eval_stage: Stage of the validation and test episodes (``None``: the current training stage), e.g. ``full``
            so that a curriculum run is always judged on the whole task.
        num_envs: Environments played in lock-step.
        batch_size: Examples per training batch.
        mistake_prob: The teacher's probability of a deliberate wrong action (negative examples). The datamodule
            owns it: :attr:`mistake_prob` is the value in force, :meth:`set_mistake_prob` changes it (as
            :class:`callbacks.NegativeExampleCallback` does on a schedule), and the held-out sets always use this
            configured value. A change reaches training only while it streams new episodes
            (:attr:`streams_teacher_turns`).
        shuffle_actions: Show the admissible actions in a random order each turn.
        max_prompt_tokens: Budget of a policy prompt (prompts are cut from the left). It covers the reflection the
            policy reads, so it is usually larger than ``max_reflection_prompt_tokens``.
        max_reflection_tokens: Reflection budget.
        max_reflection_prompt_tokens: Budget of a reflection prompt, what the reflection model reads: in reflection
            SFT examples and whenever it writes reflections (policy SFT, RL, evaluation). Give the stages that use a
            reflection model the budget it was trained with, so it reads prompts cut as in training. ``None``:
            ``max_prompt_tokens``.
        seed: Seed of the training episodes (each DDP rank adds its rank times a large offset).
        val_seed: First seed of the validation episodes (held out: far from the training seeds).
        val_episodes: Teacher episodes in the validation set.
        test_seed: First seed of the test episodes (never used for a choice: checkpoints are chosen on validation).
        test_episodes: Teacher episodes in the test set.
        val_batch_size: Examples per validation batch.
        episodes_per_step: Episodes played per RLFT training step (policy mode).
        teacher_episodes: A fixed budget of teacher episodes for the SFT stages: they are played once (with the
            mistake probability in force when training starts) and their turns are cycled through in shuffled passes.
            ``None``: an unlimited stream of new episodes. Under DDP the budget is per process.
        eval_group_by: An ``info`` key to break held-out success down by (AutoExplore: ``depth``), logged as
            ``<split>/success_rate_<key>_<value>``.
        teacher: Who writes the teacher's reflections in the SFT data: ``"rules"`` (``RULES``: the environment's
            rule-based teacher) or an OpenAI-compatible endpoint, ``{base_url: ..., model: ..., api_key_env:
            OPENAI_API_KEY, ...}`` (the fields of :class:`datamodules.llm.EndpointConfig` and ``max_words``), as GPT-4
            wrote them in the paper. The API key is read from the environment variable ``api_key_env`` names and is
            never saved. Completions are cached on disk (``cache_dir``, default ``<logger save_dir>/llm_cache``), so a
            rerun or the next SFT stage on the same episodes costs nothing. Used for the training turns and the
            held-out sets. Not the ``reflection: teacher`` of the policy stages (``lightning_modules.agent.TEACHER``):
            that one says *that* the policy reads the teacher's reflections instead of a reflection model's, this one
            says *which* teacher writes them.
        dataset: A JSONL file of teacher turns (``reflect-rl export-dataset``) to train the SFT stages from instead
            of playing the teacher; ``teacher_episodes`` then takes the file's first episodes. Validation and test
            still play the held-out seeds.

    Example:
        >>> datamodule = RolloutDataModule("ReflectRL/DangerousTaxi-v0", {"observation_format": "compact"})
        >>> datamodule.bind(tokenizer, examples="policy")
        >>> batch = next(iter(datamodule.train_dataloader()))  # input_ids, attention_mask, num_actions, targets
    """

    def __init__(
        self,
        env_id: str = "ReflectRL/DangerousTaxi-v0",
        env_kwargs: dict[str, Any] | None = None,
        val_env_kwargs: dict[str, Any] | None = None,
        test_env_kwargs: dict[str, Any] | None = None,
        stage: str | None = None,
        eval_stage: str | None = None,
        num_envs: int = 16,
        batch_size: int = 32,
        mistake_prob: float = 0.0,
        shuffle_actions: bool = False,
        max_prompt_tokens: int = 256,
        max_reflection_tokens: int = 96,
        max_reflection_prompt_tokens: int | None = None,
        seed: int = 0,
        val_seed: int = 1_000_000,
        val_episodes: int = 32,
        test_seed: int = 2_000_000,
        test_episodes: int = 64,
        val_batch_size: int = 64,
        episodes_per_step: int = 16,
        teacher_episodes: int | None = None,
        eval_group_by: str | None = None,
        teacher: str | dict[str, Any] | None = RULES,
        dataset: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the teacher's config names the API key's variable, never the key
        if not 0.0 <= mistake_prob <= 1.0:
            raise ValueError(f"mistake_prob must be in [0, 1], got {mistake_prob}.")
        if max_reflection_prompt_tokens is not None and max_reflection_prompt_tokens < 1:
            budget = max_reflection_prompt_tokens
            raise ValueError(f"max_reflection_prompt_tokens must be a positive number of tokens or null, got {budget}.")
        if teacher_episodes is not None and teacher_episodes < 1:
            raise ValueError(f"teacher_episodes must be a positive number of episodes or null, got {teacher_episodes}.")
        check_teacher_spec(teacher)  # a bad config or a missing API key fails now, before anything is trained
        #: Where the LLM teacher caches completions when its config gives no ``cache_dir`` (default: under the
        #: trainer logger's ``save_dir``, else ``runs/llm_cache``).
        self.llm_cache_dir: str | None = None
        self._llm_teacher: LLMTeacher | None = None
        self.stage = stage
        self.mistake_prob = mistake_prob
        self.encoder: PromptEncoder | None = None
        self.examples: ExampleKind = "policy"
        self.with_reflection = True
        self._stream: TeacherStream | None = None
        self._eval_turns: dict[str, list[Turn]] = {}
        env = make_envs(env_id, env_kwargs, 1)[0]  # fail now, not inside the training loop, on a bad config
        self._max_actions = int(env.action_space.n)
        env.close()
        self._dataset_turns = read_dataset(dataset, env_id, self._max_actions) if dataset is not None else None

    @classmethod
    def from_config(
        cls, configs: Sequence[str | os.PathLike[str]], overrides: Mapping[str, Any] | None = None
    ) -> RolloutDataModule:
        """The data module of stage configs' ``data`` sections (merged in order), with dotted-key overrides.

        A ``data`` section that names a file (``data: sft_data.yaml``, as the SFT stages share theirs) is read from it
        (:func:`datamodules.stage_config.load_stage_config`).

        Used by the commands that need the data of a stage without training (``export-dataset``, ``evaluate-llm``).

        Raises:
            FileNotFoundError: for a missing config; ValueError: for a config without a ``data`` section or an
                unknown option.
        """
        data: dict[str, Any] = {}
        for config in configs:
            path = regular_file(config, "Config")
            section = load_stage_config(path).get("data")
            if not isinstance(section, Mapping):
                raise ValueError(f"{path} has no data section.")
            _merge(data, section)
        for key, value in (overrides or {}).items():
            *parents, last = key.split(".")
            target = data
            for name in parents:
                target = target.setdefault(name, {})
            target[last] = value
        try:
            return cls(**data)
        except TypeError as error:
            raise ValueError(f"Bad data options in {', '.join(map(str, configs))}: {error}") from None

    # -- what the LightningModule and callbacks call ----------------------------------------------------------------
    def bind(
        self, tokenizer, examples: ExampleKind = "policy", with_reflection: bool = True, chat_template: bool = False
    ) -> None:
        """Set the tokenizer and the kind of example to yield (called by the module in ``setup``).

        ``examples="rollout"``: each training item is ``{"envs", "seeds"}`` for the module to play. ``chat_template``:
        the backbone's option of that name (prompts wrapped in the tokenizer's chat template).
        """
        if examples not in ("reflection", "policy", "rollout"):
            raise ValueError(f"examples must be 'reflection', 'policy' or 'rollout', got {examples!r}.")
        hp = self.hparams
        self.encoder = PromptEncoder(
            tokenizer, hp.max_prompt_tokens, hp.max_reflection_tokens, hp.max_reflection_prompt_tokens, chat_template
        )
        self.examples = examples
        self.with_reflection = with_reflection

    @property
    def max_actions(self) -> int:
        """Size of the environment's action space (the most labels a decision can need), read when it was made."""
        return self._max_actions

    def set_mistake_prob(self, probability: float) -> None:
        """Change the teacher's probability of a deliberate wrong action, effective from the next turn it plays.

        Training turns see the change only while they come from a stream of new episodes
        (:attr:`streams_teacher_turns`); the held-out sets keep the configured ``mistake_prob``.
        """
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"mistake_prob must be in [0, 1], got {probability}.")
        self.mistake_prob = probability
        if self._stream is not None:
            self._stream.mistake_prob = probability

    @property
    def streams_teacher_turns(self) -> bool:
        """Whether training reads a stream of new teacher episodes, so that :meth:`set_mistake_prob` reaches its turns.

        ``False`` with a fixed budget (``teacher_episodes``: played once when training starts, with the probability in
        force then), with a ``dataset`` (the file's turns), and in policy mode (the module plays its own episodes).
        """
        return self.examples != "rollout" and self._dataset_turns is None and not self.hparams.teacher_episodes

    @property
    def env_id(self) -> str:
        """The environment's id or class path (``env_id`` of the config)."""
        return self.hparams.env_id

    @property
    def evaluation_stage(self) -> str | None:
        """The stage held-out episodes are played in (``eval_stage``, else the current training stage)."""
        return self.hparams.eval_stage if self.hparams.eval_stage is not None else self.stage

    def known_stages(self) -> tuple[str, ...]:
        """The curriculum stages the environment knows."""
        env = make_envs(self.hparams.env_id, self.hparams.env_kwargs, 1)[0]
        stages = tuple(getattr(env.unwrapped, "stages", ()))
        env.close()
        return stages

    def set_stage(self, stage: str | None) -> None:
        """Switch the curriculum stage of new training episodes (and of the held-out sets built after it)."""
        self.stage = stage
        if self._stream is not None:
            self._stream.stage = stage

    # -- data ------------------------------------------------------------------------------------------------------
    def _rank(self) -> int:
        trainer = getattr(self, "trainer", None)
        return trainer.global_rank if trainer is not None else 0

    # -- the teacher ------------------------------------------------------------------------------------------------
    @property
    def teacher(self) -> LLMTeacher | None:
        """The LLM teacher of the ``teacher`` option (made on first use), or ``None`` for the rule-based teacher."""
        if self._llm_teacher is None and self.hparams.teacher not in (None, RULES):
            self._llm_teacher = make_teacher(self.hparams.teacher, cache_dir=self._default_llm_cache_dir())
        return self._llm_teacher

    @property
    def teacher_name(self) -> str:
        """``rules`` or ``llm:<model>`` (recorded in exported datasets)."""
        return self.teacher.name if self.teacher is not None else RULES

    @property
    def llm_client(self):
        """The LLM teacher's endpoint client (its ``usage`` counts requests and tokens), or ``None``."""
        return self.teacher.client if self.teacher is not None else None

    def _default_llm_cache_dir(self) -> Path:
        if self.llm_cache_dir is not None:
            return Path(self.llm_cache_dir)
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            save_dir = getattr(trainer.logger, "save_dir", None) if trainer.logger is not None else None
            return Path(save_dir or trainer.default_root_dir) / "llm_cache"
        return Path("runs") / "llm_cache"

    def log_teacher_usage(self) -> None:
        """Log the LLM teacher's requests, cache hits and tokens so far (nothing for the rule-based teacher)."""
        if self._llm_teacher is not None:
            rank_zero_info(f"LLM teacher: {self._llm_teacher.client.usage_summary()}")

    # -- data ------------------------------------------------------------------------------------------------------
    def train_stream(self) -> TeacherStream:
        """A fresh teacher stream for this process (seeded with ``seed + rank * RANK_SEED_STRIDE``)."""
        hp = self.hparams
        envs = make_envs(hp.env_id, hp.env_kwargs, hp.num_envs)
        self._stream = TeacherStream(
            envs,
            seed=hp.seed + self._rank() * RANK_SEED_STRIDE,
            stage=self.stage,
            mistake_prob=self.mistake_prob,
            shuffle_actions=hp.shuffle_actions,
            with_reflection=self.with_reflection or self.examples == "reflection",
            teacher=self.teacher,
        )
        return self._stream

    def fixed_turns(self) -> list[Turn] | None:
        """The fixed SFT turns, or ``None`` for an unlimited stream of new episodes.

        They are the dataset's (its first ``teacher_episodes`` episodes, if set), or else the turns of
        ``teacher_episodes`` teacher episodes played now.
        """
        hp = self.hparams
        if self._dataset_turns is not None:
            turns = self._dataset_turns
            return first_episodes(turns, hp.teacher_episodes) if hp.teacher_episodes else list(turns)
        if hp.teacher_episodes:
            turns = [t for episode in self.train_stream().episodes(hp.teacher_episodes) for t in episode]
            self.log_teacher_usage()
            return turns
        return None

    def _eval_setup(self, split: str) -> tuple[dict[str, Any], int, int]:
        hp = self.hparams
        if split == "val":
            return {**(hp.env_kwargs or {}), **(hp.val_env_kwargs or {})}, hp.val_seed, hp.val_episodes
        if split == "test":
            return {**(hp.env_kwargs or {}), **(hp.test_env_kwargs or {})}, hp.test_seed, hp.test_episodes
        raise ValueError(f"split must be 'val' or 'test', got {split!r}.")

    def eval_turns(self, split: str = "val") -> list[Turn]:
        """A fixed held-out set: every turn of the split's teacher episodes (built once, then reused)."""
        if split not in self._eval_turns:
            kwargs, seed, episodes = self._eval_setup(split)
            envs = make_envs(self.hparams.env_id, kwargs, min(self.hparams.num_envs, episodes))
            stream = TeacherStream(
                envs, seed=seed, stage=self.evaluation_stage, mistake_prob=self.hparams.mistake_prob,
                teacher=self.teacher,
            )  # fmt: skip
            self._eval_turns[split] = [turn for episode in stream.episodes(episodes) for turn in episode]
            self.log_teacher_usage()
        return self._eval_turns[split]

    def make_eval_envs(self, split: str, count: int):
        """Environments configured like the split's held-out set (for playing its episodes with a model)."""
        return make_envs(self.hparams.env_id, self._eval_setup(split)[0], count)

    def eval_seeds(self, split: str, count: int) -> list[int]:
        """Seeds of ``count`` held-out episodes of the split."""
        first = self._eval_setup(split)[1]
        return list(range(first, first + count))

    def encode(self, turns: list[Turn]) -> dict[str, Any]:
        """Tokenise turns as the bound kind of example; the batch also keeps the turns and the negative share."""
        if self.encoder is None:
            raise RuntimeError("RolloutDataModule.bind(tokenizer, ...) must be called before data is drawn.")
        observations = [t.observation for t in turns]
        if self.examples == "reflection":
            batch = self.encoder.reflection_batch(observations, [t.reflection or "" for t in turns])
        else:
            reflections = [t.reflection for t in turns] if self.with_reflection else None
            batch = self.encoder.policy_batch(
                observations, [t.actions for t in turns], reflections, [t.oracle for t in turns]
            )
        batch["turns"] = turns
        batch["negative_share"] = sum(t.negative for t in turns) / len(turns)
        return batch

    def sample_texts(self, episodes: int) -> list[str]:
        """Text of ``episodes`` teacher episodes (prompts, reflections, answers), to train a tokenizer on.

        With a ``dataset`` the texts are its first episodes; otherwise the rule-based teacher plays them (also when
        the teacher is an LLM: a byte-level tokenizer covers any text, and no request is spent on it), erring at least
        as often as :data:`TOKENIZER_SAMPLE_MIN_MISTAKE_PROB`.
        """
        hp = self.hparams
        if self._dataset_turns is not None:
            sample = [first_episodes(self._dataset_turns, min(episodes, episode_count(self._dataset_turns)))]
        else:
            stream = TeacherStream(
                make_envs(hp.env_id, hp.env_kwargs, min(hp.num_envs, episodes)),
                seed=hp.seed + 7919,
                stage=self.stage,
                mistake_prob=max(self.mistake_prob, TOKENIZER_SAMPLE_MIN_MISTAKE_PROB),
            )
            sample = stream.episodes(episodes)
        texts = []
        for episode in sample:
            for turn in episode:
                texts.append(format_reflection_prompt(turn.observation) + (turn.reflection or ""))
                texts.append(
                    format_policy_prompt(turn.observation, turn.actions, turn.reflection)
                    + format_action_answer(turn.oracle or 0)
                )
        return texts

    def train_dataloader(self) -> DataLoader:
        dataset = _PolicyRollouts(self) if self.examples == "rollout" else _TeacherBatches(self)
        return DataLoader(dataset, batch_size=None, num_workers=0, collate_fn=_identity)

    def _eval_dataloader(self, split: str) -> DataLoader:
        if self.examples == "rollout":  # the module plays the split's held-out episodes in one step
            return DataLoader([{"split": split}], batch_size=None, num_workers=0, collate_fn=_identity)
        turns = self.eval_turns(split)
        size = self.hparams.val_batch_size
        batches = [self.encode(turns[i : i + size]) for i in range(0, len(turns), size)]
        return DataLoader(batches, batch_size=None, num_workers=0, collate_fn=_identity)

    def val_dataloader(self) -> DataLoader:
        return self._eval_dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_dataloader("test")


def _identity(item: Any) -> Any:
    return item


def _merge(into: dict[str, Any], update: Mapping[str, Any]) -> None:
    """Merge ``update`` into ``into``, recursively for mappings (later configs override earlier ones)."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value
