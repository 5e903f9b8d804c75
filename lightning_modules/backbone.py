"""Backbone loading, in one place: a Hugging Face causal LM (optionally with LoRA) or the embedded tiny GPT-2.

* ``BackboneSpec(name_or_path="gpt2-xl", lora=LoRASpec(r=16))``: a hub model or a local directory, like the paper's.
* ``BackboneSpec(name_or_path="model.gguf")``: a GGUF file, dequantised (:mod:`lightning_modules.pretrained`, which
  also converts the bundled SmolLM2-135M-Instruct into a directory: ``reflect-rl convert-gguf``).
* ``BackboneSpec()``: the embedded default, a tiny GPT-2 built from :class:`TinyGPT2Spec` with a byte-level BPE
  tokenizer trained in seconds on the environment's own text. Nothing is downloaded.

Every stage exports with :func:`export_backbone` (``save_pretrained``; for LoRA the adapter only, with its base named),
and the next stage names that directory in ``name_or_path``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from datamodules.prompt import ACTION_LABELS, SECTION_MARKERS
from lightning_modules.pretrained import is_gguf, load_gguf, lora_targets

#: The end-of-text token of the embedded tokenizer (GPT-2's name for it), also used for padding.
END_OF_TEXT = "<|endoftext|>"


@dataclass
class TinyGPT2Spec:
    """Size of the embedded tiny GPT-2 and of its tokenizer.

    Args:
        n_layer: Transformer blocks.
        n_embd: Hidden size.
        n_head: Attention heads.
        n_positions: Longest sequence in tokens.
        vocab_size: Target vocabulary of the byte-level BPE tokenizer (trained on environment text).
        num_labels: Action labels made single tokens (the most admissible actions a decision can have).
        tokenizer_samples: Episodes' worth of environment text the tokenizer is trained on.

    Example:
        >>> spec = BackboneSpec(tiny=TinyGPT2Spec(n_layer=2, n_embd=128, n_head=4, vocab_size=2048, num_labels=32))
        >>> model, tokenizer = load_backbone(spec, lambda: datamodule.sample_texts(spec.tiny.tokenizer_samples))
    """

    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 2
    n_positions: int = 512
    vocab_size: int = 1024
    num_labels: int = 64
    tokenizer_samples: int = 200


@dataclass
class LoRASpec:
    """A ``peft`` LoRA adapter.

    Args:
        r: Rank.
        alpha: Scaling numerator (``lora_alpha``).
        dropout: Dropout on the adapter's input.
        target_modules: Module names to adapt, or ``"auto"`` (or ``None``) for the architecture's attention and MLP
            projections (GPT-2: ``c_attn``, ``c_proj``, ``c_fc``; Llama: ``q_proj`` ... ``down_proj``; see
            :data:`lightning_modules.pretrained.LORA_TARGETS`).

    Example:
        >>> spec = BackboneSpec(name_or_path="gpt2-xl", lora=LoRASpec(r=16, alpha=32, dropout=0.05))
        >>> model, tokenizer = load_backbone(spec)  # a peft model: only the adapter trains
    """

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | str | None = "auto"


@dataclass
class BackboneSpec:
    """Which causal LM a player uses.

    Args:
        name_or_path: A Hugging Face hub name (``gpt2-xl``), a local directory (an export of an earlier stage, full
            model or LoRA adapter, or a converted GGUF model) or a ``.gguf`` file. ``None`` builds the embedded tiny
            GPT-2 from ``tiny``.
        tiny: Size of the embedded model when ``name_or_path`` is ``None``.
        lora: Wrap the model in a new LoRA adapter (only the adapter trains). An exported adapter directory loads
            back as an adapter without this.
        dtype: ``float32``, ``bfloat16`` or ``float16`` for the weights.
        gradient_checkpointing: Trade compute for memory (GPU profiles).
        chat_template: Wrap every prompt in the tokenizer's chat template (instruct models): the prompt becomes the
            user's turn and its last section marker opens the assistant's (``datamodules.encoding.chat_prompt``).
            All three stages of a profile must agree: the reflection model reads the policy stage's prompts.

    Example:
        >>> BackboneSpec()  # the embedded tiny GPT-2, nothing downloaded
        >>> BackboneSpec(name_or_path="gpt2-xl", lora=LoRASpec(r=16), dtype="bfloat16", gradient_checkpointing=True)
        >>> BackboneSpec(name_or_path="runs/taxi/reflection_sft/export")  # an earlier stage's export
    """

    name_or_path: str | None = None
    tiny: TinyGPT2Spec = field(default_factory=TinyGPT2Spec)
    lora: LoRASpec | None = None
    dtype: str = "float32"
    gradient_checkpointing: bool = False
    chat_template: bool = False

    def __post_init__(self) -> None:
        # `--model.init_args.backbone.name_or_path=null` on the command line arrives as the string "None".
        if self.name_or_path in ("None", "null", ""):
            self.name_or_path = None


def label_token_strings(num_labels: int = 64) -> list[str]:
    """The strings that must be single tokens: each action label as it follows ``# Action:`` (`` A``)."""
    return [" " + label for label in ACTION_LABELS[:num_labels]]


def _force_single_tokens(tokenizer, words: list[str]):
    """Append BPE merges so that each of ``words`` (pre-tokenised as one word) encodes to one token.

    The new merges come last, so they never change how the training text was split; they only join what the
    learned merges left apart inside these words.
    """
    import json

    from tokenizers import Tokenizer

    state = json.loads(tokenizer.to_str())
    vocab, merges = state["model"]["vocab"], state["model"]["merges"]
    for _ in range(8):  # each round joins one pair per word; labels are at most 3 bytes long
        pending = {}
        for word in words:
            pieces = tokenizer.encode(word).tokens
            if len(pieces) > 1:
                pending[(pieces[0], pieces[1])] = None
        if not pending:
            return tokenizer
        for left, right in pending:
            merges.append([left, right] if merges and isinstance(merges[0], list) else f"{left} {right}")
            vocab.setdefault(left + right, len(vocab))
        tokenizer = Tokenizer.from_str(json.dumps(state))
    raise RuntimeError("could not make the action labels single tokens")


def train_tokenizer(texts: Iterable[str], vocab_size: int, num_labels: int = 64):
    """Train a byte-level BPE tokenizer on ``texts`` and return it as a Hugging Face fast tokenizer.

    The first ``num_labels`` action labels (`` A``, `` B``, ...) and the section markers are single tokens whatever
    the text: the markers are added tokens, and the labels get merges of their own.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer = _force_single_tokens(tokenizer, label_token_strings(num_labels))
    tokenizer.add_tokens([AddedToken(marker, normalized=False) for marker in SECTION_MARKERS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT, pad_token=END_OF_TEXT
    )


def build_tiny_backbone(spec: TinyGPT2Spec, texts: Iterable[str]) -> tuple[nn.Module, object]:
    """Build the embedded default: a freshly initialised tiny GPT-2 and a tokenizer trained on ``texts``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = train_tokenizer(texts, spec.vocab_size, spec.num_labels)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=spec.n_positions,
        n_embd=spec.n_embd,
        n_layer=spec.n_layer,
        n_head=spec.n_head,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attn_implementation="sdpa",  # from_config defaults to eager attention, 15x slower on CPU here
    )
    return GPT2LMHeadModel(config), tokenizer


def _dtype(name: str) -> torch.dtype:
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in dtypes:
        raise ValueError(f"dtype must be one of {', '.join(dtypes)}, got {name!r}.")
    return dtypes[name]


def _is_local(name_or_path: str) -> bool:
    return (
        name_or_path.startswith((".", "/", "~"))
        or name_or_path.count("/") > 1
        or os.path.isdir(os.path.expanduser(name_or_path))
    )


def _hub_reachable(name: str, timeout: float = 3.0) -> bool:
    """Whether ``name`` can come from the hub: it is in the local cache, or the hub answers within ``timeout``."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return True
    if constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _load_pretrained(name_or_path: str, dtype: torch.dtype, option: str | None = None) -> tuple[nn.Module, object]:
    """Load a full model or a LoRA adapter export from a directory or the hub, with errors that say what to do."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(os.path.expanduser(name_or_path))
    if is_gguf(name_or_path):
        return load_gguf(path, dtype)
    if _is_local(name_or_path):
        if not path.is_dir():
            named = (
                f"the {option} option"
                if option
                else "the option that names it (backbone.name_or_path, or reflection for the reflection model)"
            )
            raise FileNotFoundError(
                f"Model directory {path} does not exist. Run the stage that exports it first, or point {named} at an "
                "export of an earlier stage (a directory with config.json or adapter_config.json) or at a Hugging "
                "Face hub name. A GGUF model (SmolLM2): `reflect-rl convert-gguf --output-dir DIR` writes DIR."
            )
        if (path / "adapter_config.json").is_file():
            return _load_adapter(path, dtype), AutoTokenizer.from_pretrained(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} holds no model: no config.json (full model) or adapter_config.json (LoRA adapter). "
                "Export a stage with save_pretrained, or point name_or_path at such a directory."
            )
    if not _is_local(name_or_path) and not _hub_reachable(name_or_path):
        raise OSError(
            f"{name_or_path!r} is not a local directory and the Hugging Face hub cannot be reached (no network?) "
            "and the model is not in the local cache. Download it where there is network "
            f"(`huggingface-cli download {name_or_path} --local-dir DIR`), copy DIR here and set name_or_path: DIR."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype)
    except OSError as error:
        raise OSError(
            f"Could not load {name_or_path!r} from the Hugging Face hub ({error}). Without network access, download "
            "the model elsewhere, copy its directory here and set name_or_path to that local directory (or set "
            "HF_HUB_OFFLINE=1 to use the local cache only)."
        ) from None
    return model, tokenizer


def _load_adapter(path: Path, dtype: torch.dtype) -> nn.Module:
    """A LoRA adapter export on its base model (a base that is a GGUF file is loaded with :func:`load_gguf`)."""
    from peft import AutoPeftModelForCausalLM, PeftConfig, PeftModel

    base = PeftConfig.from_pretrained(path).base_model_name_or_path or ""
    if not is_gguf(base):
        return AutoPeftModelForCausalLM.from_pretrained(path, is_trainable=True, dtype=dtype)
    return PeftModel.from_pretrained(load_gguf(base, dtype)[0], path, is_trainable=True)


def load_backbone(
    spec: BackboneSpec, texts: Callable[[], Iterable[str]] | None = None, option: str | None = None
) -> tuple[nn.Module, object]:
    """Load the causal LM and tokenizer that ``spec`` names.

    Args:
        spec: What to load.
        texts: For the embedded default only: a callable returning environment text to train the tokenizer on.
        option: The configuration option ``spec.name_or_path`` came from (``backbone.name_or_path``,
            ``reflection``), named by the error for a missing directory.

    Returns:
        ``(model, tokenizer)``; the tokenizer pads on the left (batched decisions and generation need it).

    Raises:
        FileNotFoundError: a local directory that does not exist or holds no model.
        OSError: a hub name that cannot be reached (for example, no network), with how to use a local directory.

    Example:
        >>> model, tokenizer = load_backbone(BackboneSpec(), lambda: datamodule.sample_texts(200))  # embedded default
        >>> model, tokenizer = load_backbone(BackboneSpec(name_or_path="runs/taxi/reflection_sft/export"))
    """
    dtype = _dtype(spec.dtype)
    if spec.name_or_path is None:
        if texts is None:
            raise ValueError("The embedded tiny backbone needs environment text to train its tokenizer on.")
        model, tokenizer = build_tiny_backbone(spec.tiny, texts())
        model = model.to(dtype)
    else:
        model, tokenizer = _load_pretrained(spec.name_or_path, dtype, option)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    tokenizer.padding_side = "left"
    if spec.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if spec.lora is not None:
        from peft import LoraConfig, get_peft_model

        target_modules, fan_in_fan_out = lora_targets(model, spec.lora.target_modules)
        config = LoraConfig(
            r=spec.lora.r,
            lora_alpha=spec.lora.alpha,
            lora_dropout=spec.lora.dropout,
            target_modules=target_modules,
            task_type="CAUSAL_LM",
            fan_in_fan_out=fan_in_fan_out,
        )
        model = get_peft_model(model, config)
    return model, tokenizer


def export_backbone(model: nn.Module, tokenizer: object, directory: str | Path) -> Path:
    """Save ``model`` and ``tokenizer`` as a Hugging Face directory that :func:`load_backbone` reads back.

    A ``peft`` model saves its adapter only (``adapter_config.json`` names the base model). Returns the directory.

    Example:
        >>> directory = export_backbone(model, tokenizer, "runs/taxi/reflection_sft/export")
        >>> model, tokenizer = load_backbone(BackboneSpec(name_or_path=str(directory)))
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def backbone_state(model: nn.Module, tokenizer) -> dict:
    """What a Lightning checkpoint needs, besides the weights, to rebuild a full (non-LoRA) backbone."""
    special = {name: getattr(tokenizer, name) for name in ("bos_token", "eos_token", "pad_token")}
    if getattr(tokenizer, "chat_template", None):
        special["chat_template"] = tokenizer.chat_template
    return {"config": model.config.to_dict(), "tokenizer": tokenizer.backend_tokenizer.to_str(), "special": special}


def backbone_from_state(state: dict) -> tuple[nn.Module, object]:
    """Rebuild a backbone (random weights, to be overwritten by the checkpoint's) and its tokenizer."""
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    config = dict(state["config"])
    config_class = AutoConfig.for_model(config.pop("model_type"), **config)
    model = AutoModelForCausalLM.from_config(config_class)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(state["tokenizer"]), **state["special"])
    tokenizer.padding_side = "left"
    return model, tokenizer
