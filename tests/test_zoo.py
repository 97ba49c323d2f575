"""The shipped model zoo: names resolve, splits and tasks load, cards are honest, the family is ordered.

Everything here reads only the package's own assets (no network, no rebuild).
"""

from __future__ import annotations

import json

import pytest
import torch

from complaw import zoo
from complaw.errors import ComplawError
from complaw.zoo import corpus, lm

MODELS = [m.name for m in zoo.list_models()]


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(zoo.tokenizer_path())


def _family(name: str) -> list[zoo.ZooModel]:
    return sorted((m for m in zoo.list_models() if m.family == name), key=lambda m: m.non_embedding_params)


# --- what ships ----------------------------------------------------------------------------------------
def test_shipped_size_at_most_40_mb():
    assert zoo.shipped_bytes() <= 40_000_000


def test_family_shape():
    llama, qwen = _family("llama"), _family("qwen2")
    assert len(llama) >= 4 and len(qwen) >= 2
    assert llama[-1].non_embedding_params >= 10 * llama[0].non_embedding_params
    cards = {m.name: zoo.card(m.name) for m in zoo.list_models()}
    assert any(c["architecture"]["num_key_value_heads"] < c["architecture"]["num_attention_heads"]
               for c in cards.values()), "no model uses grouped-query attention"
    for c in cards.values():
        a = c["architecture"]
        assert a["hidden_size"] % 8 == 0 and a["intermediate_size"] % 8 == 0
        assert 2.5 <= a["intermediate_size"] / a["hidden_size"] <= 4
        if c["family"] == "qwen2":
            assert a["qkv_bias"] and a["tie_word_embeddings"]


def test_model_dirs_have_cards_and_tokenizer():
    for m in zoo.list_models():
        for f in ("config.json", "model.safetensors", "card.json", "README.md", "tokenizer.json"):
            assert (m.path / f).is_file(), f"{m.name}: {f} missing"
        card = json.loads((m.path / "card.json").read_text())
        assert card["params"] == m.params and card["test_loss"] == m.test_loss
        readme = (m.path / "README.md").read_text()
        assert f"{card['test_loss']:.4f}" in readme and f"{card['non_embedding_params']:,}" in readme


# --- names ---------------------------------------------------------------------------------------------
def test_resolve_model_with_and_without_prefix():
    assert zoo.resolve_model("zoo:llama-xs") == zoo.resolve_model("llama-xs")
    assert (zoo.resolve_model("zoo:qwen-s") / "config.json").is_file()


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(ComplawError) as err:
        zoo.resolve_model("zoo:llama-xxl")
    msg = str(err.value)
    assert "\n" not in msg and "zoo:llama-xs" in msg and "zoo:qwen-m" in msg


def test_models_io_resolves_zoo_ids():
    from complaw.models.io import resolve_model_id

    assert resolve_model_id("zoo:llama-s") == str(zoo.resolve_model("llama-s"))
    with pytest.raises(ComplawError):
        resolve_model_id("zoo:nope")


# --- splits --------------------------------------------------------------------------------------------
def test_splits_load_and_are_disjoint_by_file():
    paths = {}
    for name in zoo.SPLITS:
        texts = zoo.load_split(name)
        assert texts and all(isinstance(t, str) and t for t in texts)
        assert zoo.load_split("zoo:" + name) == texts
        paths[name] = {r["path"] for r in corpus.read_jsonl_gz(zoo.resolve_split("zoo:" + name))}
    assert not (paths["rft"] & paths["test"]) and not (paths["calibration"] & paths["test"])
    manifest = json.loads((zoo.ASSETS / "corpus_manifest.json").read_text())
    by_split = {}
    for f in manifest["files"]:
        by_split.setdefault(f["split"], set()).add(f["path"])
    for name in zoo.SPLITS:
        assert paths[name] == by_split[name]
        assert all(corpus.split_of(p) == name for p in paths[name])


def test_unknown_split_is_a_user_error():
    with pytest.raises(ComplawError, match="zoo:rft"):
        zoo.load_split("zoo:train")


# --- tokenizer -----------------------------------------------------------------------------------------
def test_tokenizer_loads_from_every_model_dir(tok):
    from transformers import AutoTokenizer

    assert len(tok) == 4096
    assert tok.bos_token == lm.BOS and tok.eos_token == lm.EOS and tok.pad_token == lm.PAD
    text = "def f(x):\n    return x  # ünïcode\n"
    assert tok.decode(tok(text)["input_ids"]) == text
    for m in zoo.list_models():
        assert zoo.load_tokenizer(m.name)(text)["input_ids"] == tok(text)["input_ids"]
        if m.family == "llama":
            assert AutoTokenizer.from_pretrained(m.path)(text)["input_ids"] == tok(text)["input_ids"]


@pytest.mark.xfail(strict=True, reason="transformers v5 forces Qwen2Tokenizer (its own pre-tokenizer regex) on "
                   "every model_type=qwen2 directory; use complaw.zoo.load_tokenizer for the qwen models")
def test_autotokenizer_on_qwen_dirs_matches_training_tokenizer(tok):
    from transformers import AutoTokenizer

    text = "def f(x):\n    return x\n"
    assert AutoTokenizer.from_pretrained(zoo.resolve_model("qwen-s"))(text)["input_ids"] == tok(text)["input_ids"]


# --- the family is a real scaling family ---------------------------------------------------------------
def test_unigram_entropy_matches_index(tok):
    h = lm.unigram_entropy(tok, zoo.load_split("test"))
    assert h == pytest.approx(zoo.index()["unigram_entropy_test"], abs=1e-4)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_test_loss_falls_strictly_with_size(family):
    losses = [m.test_loss for m in _family(family)]
    assert all(a > b for a, b in zip(losses, losses[1:], strict=False)), losses
    h = zoo.index()["unigram_entropy_test"]
    # well below the best context-free model: > 0.9 nats under it, i.e. perplexity < 41% of the unigram's
    assert h - max(losses) > 0.9, (losses, h)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_average_accuracy_rises_with_size(family):
    accs = [m.avg_acc for m in _family(family)]
    assert accs[-1] > accs[0] and all(b >= a - 0.01 for a, b in zip(accs, accs[1:], strict=False)), accs


def test_largest_model_beats_chance_on_every_task():
    largest = _family("llama")[-1]
    for task, res in zoo.card(largest.name)["tasks"].items():
        # chance is 0.25; with 500 items one standard error is ~0.019, so 0.32 is > 3.5 SE above it
        assert max(res["acc"], res["acc_norm"]) >= 0.32, (task, res)


# --- cards are reproducible from the stored weights ----------------------------------------------------
@pytest.fixture(scope="module")
def subset_blocks(tok):
    from complaw.zoo.build import SEQ_LEN, SUBSET_BLOCKS

    x, m = lm.token_blocks(tok, zoo.load_split("test"), SEQ_LEN)
    return x[:SUBSET_BLOCKS], m[:SUBSET_BLOCKS]


@pytest.mark.parametrize("name", MODELS)
def test_reload_reproduces_card_loss(name, subset_blocks):
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(2)
    model = AutoModelForCausalLM.from_pretrained(zoo.resolve_model(name))
    assert model.dtype == torch.float32  # bf16 storage, float32 compute
    card = zoo.card(name)
    loss = lm.mean_loss(model, subset_blocks)
    assert loss == pytest.approx(card["test_loss_subset"], rel=0.01)
    assert sum(p.numel() for p in model.parameters()) == card["params"]


# --- tasks ---------------------------------------------------------------------------------------------
def test_tasks_materialise_with_absolute_paths(tmp_path):
    import yaml

    inc = zoo.task_include_path(tmp_path)
    for name in zoo.task_names():
        cfg = yaml.safe_load((inc / f"{name}.yaml").read_text())
        data = cfg["dataset_kwargs"]["data_files"]["test"]
        assert cfg["task"] == name and cfg["output_type"] == "multiple_choice" and data.startswith("/")
        rows = [json.loads(line) for line in open(data)]
        assert len(rows) == zoo.index()["tasks"][name]["items"] >= 500
        assert all(len(r["choices"]) == 4 and 0 <= r["label"] < 4 for r in rows)
        assert {r["label"] for r in rows} == {0, 1, 2, 3}


def test_tasks_rebuild_identically_from_the_shipped_test_split():
    from complaw.zoo.tasks import build_tasks

    docs = [(r["path"], r["text"]) for r in corpus.read_jsonl_gz(zoo.resolve_split("test"))]
    rebuilt = build_tasks(docs)
    for name in zoo.task_names():
        assert rebuilt[name] == zoo.task_items(name)


def test_lm_eval_runs_the_zoo_tasks_offline():
    """lm-eval's own simple_evaluate on an in-memory zoo model agrees with the zoo's scorer."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = zoo.resolve_model("zoo:llama-xs")
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    limit = 24
    res = simple_evaluate(model=HFLM(pretrained=model, tokenizer=tok, batch_size=16),
                          tasks=zoo.task_names(), limit=limit,
                          task_manager=TaskManager(include_path=str(zoo.task_include_path())))
    for name in zoo.task_names():
        ours = lm.multiple_choice_accuracy(model, tok, zoo.task_items(name)[:limit])
        theirs = res["results"][name]
        assert theirs["acc,none"] == pytest.approx(ours["acc"], abs=1.5 / limit)
        assert theirs["acc_norm,none"] == pytest.approx(ours["acc_norm"], abs=1.5 / limit)


# --- CLI -----------------------------------------------------------------------------------------------
def test_cli_zoo_list(capsys):
    from complaw.cli import main

    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "zoo:llama-xs" in out and "zoo_nextline" in out and "calibration" in out


def test_cli_zoo_build_rejects_unknown_names(capsys, tmp_path):
    from complaw.cli import main

    assert main(["zoo", "build", "--only", "llama-xxl", "--out", str(tmp_path)]) == 2
    assert "llama-xxl" in capsys.readouterr().err
