"""Test-wide settings (no test may reach a model or dataset hub) and a tiny model built on the spot."""

import json
import os
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Every tests/plugins/*.py is a plugin (complaw.registry): its registrations appear in this process's registries
# and in every complaw process a test starts, without any other file naming them.
PLUGINS = sorted(str(p) for p in Path(__file__).parent.joinpath("plugins").glob("*.py"))
os.environ["COMPLAW_PLUGINS"] = ",".join(filter(None, [os.environ.get("COMPLAW_PLUGINS", ""), *PLUGINS]))


TEXT = "\n".join(f"def function_{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(400))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tiny Llama with its own BPE tokenizer, a training text file and a JSONL test file."""
    root = tmp_path_factory.mktemp("tiny")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([TEXT], trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(root / "model")
    fast.save_pretrained(root / "model")
    (root / "train.txt").write_text(TEXT)
    (root / "test.jsonl").write_text("\n".join(json.dumps({"text": TEXT[i:i + 2000]}) for i in range(0, 8000, 2000)))
    return root


@pytest.fixture(autouse=True)
def _private_policy_cache(tmp_path, monkeypatch):
    """PruneNet's on-disk policy cache goes to a directory of each test's own, never the user's cache."""
    from complaw.compress import prunenet

    root = tmp_path / "prunenet-policies"
    root.mkdir(exist_ok=True)
    monkeypatch.setattr(prunenet, "policy_cache_dir", lambda: root)
