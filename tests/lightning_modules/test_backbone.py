import time

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from datamodules.prompt import SECTION_MARKERS
from lightning_modules.backbone import (
    BackboneSpec,
    LoRASpec,
    TinyGPT2Spec,
    export_backbone,
    label_token_strings,
    load_backbone,
)

TEXTS = [
    "Taxi at row 2, column 3. Passenger at R (row 0, column 0).\n# Analyze:\nThe best action now is to go south.\n"
    "# Actions:\nA. go south\nB. go north\n# Action: A"
] * 50 + ["An Apple, AB testing: ABBA and AZ."] * 200

TINY = TinyGPT2Spec(n_layer=1, n_embd=32, n_head=2, n_positions=128, vocab_size=400, num_labels=64)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model, tokenizer = load_backbone(BackboneSpec(tiny=TINY), lambda: TEXTS)
    directory = export_backbone(model, tokenizer, tmp_path_factory.mktemp("tiny"))
    return model, tokenizer, directory


def test_labels_and_markers_are_single_tokens_even_where_the_text_splits_them_otherwise(tiny):
    _, tokenizer, _ = tiny
    for text in label_token_strings(64) + list(SECTION_MARKERS):
        assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) == 1, text
    prompt_ids = tokenizer("x\n# Action: AB", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(prompt_ids[-1]) == "\u0120AB"
    assert tokenizer.padding_side == "left"


def test_export_loads_back_with_plain_from_pretrained(tiny):
    model, tokenizer, directory = tiny
    reloaded_tokenizer = AutoTokenizer.from_pretrained(directory)
    reloaded = AutoModelForCausalLM.from_pretrained(directory)
    ids = tokenizer(TEXTS[0], return_tensors="pt")["input_ids"]
    assert reloaded_tokenizer(TEXTS[0], return_tensors="pt")["input_ids"].tolist() == ids.tolist()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, model(ids).logits)


def test_lora_trains_only_the_adapter_and_exports_the_adapter_with_its_base_named(tiny, tmp_path):
    _, _, directory = tiny
    model, tokenizer = load_backbone(BackboneSpec(name_or_path=str(directory), lora=LoRASpec(r=4, alpha=8)))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    export = export_backbone(model, tokenizer, tmp_path / "adapter")
    assert (export / "adapter_config.json").is_file() and not (export / "config.json").exists()
    assert str(directory) in (export / "adapter_config.json").read_text()
    adapter, _ = load_backbone(BackboneSpec(name_or_path=str(export)))
    assert any("lora_" in name for name, _ in adapter.named_parameters())


def test_missing_directory_and_unreachable_hub_fail_fast_with_the_fix(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_backbone(BackboneSpec(name_or_path=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_backbone(BackboneSpec(name_or_path=str(tmp_path / "empty")))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    start = time.perf_counter()
    with pytest.raises(OSError, match="local directory"):
        load_backbone(BackboneSpec(name_or_path="someone/no-such-model-xyz"))
    assert time.perf_counter() - start < 10


def test_a_tokenizer_without_single_token_labels_is_a_clear_error():
    from lightning_modules.action_head import ActionHead
    from lightning_modules.backbone import train_tokenizer

    tokenizer = train_tokenizer(["no labels here, only words and more words"] * 20, vocab_size=300, num_labels=3)
    ActionHead(tokenizer, max_actions=3)
    with pytest.raises(ValueError, match=r"' D' is 2 tokens, ' E' is 2 tokens.* supports 3 actions"):
        ActionHead(tokenizer, max_actions=6)


def test_a_null_name_or_path_from_the_command_line_means_the_embedded_model():
    assert BackboneSpec(name_or_path="None").name_or_path is None
    assert BackboneSpec(name_or_path="null").name_or_path is None
    assert BackboneSpec(name_or_path="gpt2").name_or_path == "gpt2"
