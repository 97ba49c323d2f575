"""Build the model zoo from scratch on CPU: corpus splits, tokenizer, tasks, then every model.

The recipe, top to bottom (:func:`build`):

1. collect the stdlib corpus, split it by file, write the manifest and the shipped splits (rft, calibration,
   test) as gzipped JSONL;
2. train a 4096-token byte-level BPE on the pretraining split;
3. build the multiple-choice tasks from the test split;
4. for each :class:`ModelSpec`: seed, initialise, train with AdamW (warmup + cosine) on a fixed order of
   128-token blocks, store as bf16 safetensors (config ``dtype: float32``, so ``from_pretrained`` computes in
   float32), reload *the stored checkpoint*, measure test loss and task accuracy, write ``card.json`` and
   ``README.md``;
5. write ``zoo.json``: the index that :mod:`complaw.zoo` reads.

    $ complaw zoo build                          # everything, into the package assets (~50 min, busy 2 cores)
    $ complaw zoo build --only llama-xs --out /tmp/zoo
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from complaw.errors import ComplawError
from complaw.zoo import corpus, lm, tasks

ASSETS = Path(__file__).parent / "assets"
SEQ_LEN = 128
BATCH_SIZE = 8  # sequences per step: 1,024 tokens
VOCAB_SIZE = 4096
THREADS = 1  # one thread: deterministic summation order, and no OpenMP stalls on a shared machine
SUBSET_BLOCKS = 64  # the quick-check subset of the test split: its first 64 blocks
STORAGE_DTYPE = torch.bfloat16


@dataclass(frozen=True)
class ModelSpec:
    """One zoo model: architecture and training budget.

    Args:
        name: zoo name (``llama-m``).
        family: ``llama`` (untied head, no biases) or ``qwen2`` (q/k/v biases, tied embeddings).
        hidden: residual width (multiple of 8).
        layers: decoder layers.
        heads / kv_heads: attention heads and key/value heads (kv_heads < heads: grouped-query attention).
        intermediate: FFN width (multiple of 8, 3x hidden).
        train_tokens: training tokens (rounded down to whole steps of BATCH_SIZE x SEQ_LEN).
        lr: peak AdamW learning rate.
        seed: torch seed for initialisation and data order.
    """

    name: str
    family: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    train_tokens: int
    lr: float
    seed: int = 0

    @property
    def steps(self) -> int:
        return self.train_tokens // (BATCH_SIZE * SEQ_LEN)


SPECS: tuple[ModelSpec, ...] = (
    ModelSpec("llama-xs", "llama", 64, 2, 4, 4, 192, 500_000, 1e-2),
    ModelSpec("llama-s", "llama", 96, 3, 4, 4, 288, 700_000, 1e-2),
    ModelSpec("llama-m", "llama", 128, 4, 4, 2, 384, 850_000, 7e-3),
    ModelSpec("llama-l", "llama", 192, 4, 6, 2, 576, 1_000_000, 5e-3),
    ModelSpec("qwen-s", "qwen2", 96, 3, 4, 2, 288, 700_000, 1e-2),
    ModelSpec("qwen-m", "qwen2", 160, 4, 4, 2, 480, 850_000, 7e-3),
)
SPEC_BY_NAME = {s.name: s for s in SPECS}
STAGES = ("splits", "tokenizer", "tasks")


def make_config(spec: ModelSpec, tok):
    """The Hugging Face config of ``spec`` (``LlamaConfig`` or ``Qwen2Config``)."""
    from transformers import LlamaConfig, Qwen2Config

    common = dict(
        vocab_size=len(tok), hidden_size=spec.hidden, num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads, num_key_value_heads=spec.kv_heads,
        intermediate_size=spec.intermediate, max_position_embeddings=SEQ_LEN,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    families = {"llama": (LlamaConfig, dict(rms_norm_eps=1e-5, tie_word_embeddings=False)),
                "qwen2": (Qwen2Config, dict(rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False))}
    if spec.family not in families:
        raise ComplawError(f"model family {spec.family!r}: unknown; known: {', '.join(families)}")
    config_class, settings = families[spec.family]
    return config_class(**common, **settings)


def count_params(model) -> tuple[int, int]:
    """``(total, non-embedding)`` parameters; non-embedding leaves out the token embedding and an untied
    LM head (tied weights are counted once)."""
    from complaw.models.params import count_parameters

    total = count_parameters(model)
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    embedding = emb.numel() + (0 if head is emb else head.numel())
    return total, total - embedding


def _schedule(step: int, steps: int, warmup: int) -> float:
    """Linear warmup to 1, then cosine decay to 0.1 (multiplier of the peak learning rate)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def train_model(spec: ModelSpec, tok, train_ids: torch.Tensor,
                progress: Callable[[int, int, float], None] | None = None):
    """Train ``spec`` from its seed on ``train_ids`` (blocks of SEQ_LEN); returns (model, record)."""
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(THREADS)
    torch.manual_seed(spec.seed)
    model = AutoModelForCausalLM.from_config(make_config(spec, tok), dtype=torch.float32)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=spec.lr, betas=(0.9, 0.95), eps=1e-8)
    steps, warmup = spec.steps, max(20, spec.steps // 20)
    # the fixed data order: one seeded permutation of the blocks per epoch
    gen = torch.Generator().manual_seed(spec.seed)
    order = torch.randperm(len(train_ids), generator=gen)
    cursor, losses = 0, []
    t0 = time.perf_counter()
    for step in range(steps):
        if cursor + BATCH_SIZE > len(order):
            order, cursor = torch.randperm(len(train_ids), generator=gen), 0
        x = train_ids[order[cursor:cursor + BATCH_SIZE]]
        cursor += BATCH_SIZE
        for group in opt.param_groups:
            group["lr"] = spec.lr * _schedule(step, steps, warmup)
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # clip *before* the step
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, steps, losses[-1])
    record = {
        "tokens": steps * BATCH_SIZE * SEQ_LEN, "steps": steps, "batch_size": BATCH_SIZE, "seq_len": SEQ_LEN,
        "optimizer": "AdamW(betas=(0.9, 0.95), weight_decay=0.1 on matrices, grad clip 1.0)",
        "lr": spec.lr, "schedule": f"linear warmup {warmup} steps, cosine to 10% of peak",
        "seed": spec.seed, "threads": THREADS, "train_seconds": round(time.perf_counter() - t0, 1),
        "final_train_loss": round(sum(losses[-20:]) / len(losses[-20:]), 4),
        "tokens_per_epoch": len(train_ids) * SEQ_LEN,
    }
    return model.eval(), record


def save_model(model, tok, out: Path) -> None:
    """Store ``model`` as a bf16 safetensors checkpoint whose config asks for float32 compute."""
    if out.exists():
        shutil.rmtree(out)
    model.to(STORAGE_DTYPE).save_pretrained(out, safe_serialization=True)
    model.to(torch.float32)
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["dtype"] = "float32"  # weights are stored in bf16; from_pretrained upcasts them to float32
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    tok.save_pretrained(out)


def tasks_digest(task_items: dict[str, list[dict]]) -> str:
    """A short hash of the task items a card's accuracies were measured on."""
    blob = json.dumps(task_items, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def task_metrics(model, tok, task_items: dict[str, list[dict]]) -> dict:
    """Per-task ``acc``/``acc_norm`` and their averages over tasks."""
    accs = {name: {**lm.multiple_choice_accuracy(model, tok, items), "items": len(items)}
            for name, items in task_items.items()}
    return {
        "tasks": {k: {m: round(v, 4) if isinstance(v, float) else v for m, v in d.items()} for k, d in accs.items()},
        "avg_acc": round(sum(d["acc"] for d in accs.values()) / max(len(accs), 1), 4),
        "avg_acc_norm": round(sum(d["acc_norm"] for d in accs.values()) / max(len(accs), 1), 4),
        "tasks_digest": tasks_digest(task_items),
    }


def evaluate_checkpoint(path: Path, tok, test_blocks, task_items: dict[str, list[dict]]) -> dict:
    """Reload the stored checkpoint and measure what its card reports."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path)
    total, count = lm.loss_sums(model, *test_blocks)
    sub = (test_blocks[0][:SUBSET_BLOCKS], test_blocks[1][:SUBSET_BLOCKS])
    sub_total, sub_count = lm.loss_sums(model, *sub)
    params, non_emb = count_params(model)
    return {
        "params": params, "non_embedding_params": non_emb,
        "test_loss": round(total / count, 5), "test_tokens": count,
        "test_loss_subset": round(sub_total / sub_count, 5), "test_subset_tokens": sub_count,
        "test_subset": f"first {SUBSET_BLOCKS} blocks of {SEQ_LEN} tokens of the test split",
        **task_metrics(model, tok, task_items),
    }


def write_card(mdir: Path, spec: ModelSpec, cfg, record: dict, metrics: dict, unigram: float) -> dict:
    card, readme = model_card(spec, cfg, record, metrics, unigram)
    (mdir / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (mdir / "README.md").write_text(readme)
    return card


def rescore_tasks(out: Path, tok, task_items: dict[str, list[dict]], unigram: float) -> list[str]:
    """Re-measure the task accuracies of the models already in ``out`` whose cards were scored on other
    task items (after ``--only tasks``); their weights and loss numbers stay as they are."""
    from transformers import AutoModelForCausalLM

    digest, done = tasks_digest(task_items), []
    for spec in SPECS:
        mdir = out / "models" / spec.name
        if not (mdir / "card.json").is_file():
            continue
        card = json.loads((mdir / "card.json").read_text())
        if card.get("tasks_digest") == digest:
            continue
        model = AutoModelForCausalLM.from_pretrained(mdir)
        metrics = {k: card[k] for k in ("params", "non_embedding_params", "test_loss", "test_tokens",
                                        "test_loss_subset", "test_subset_tokens", "test_subset")}
        metrics.update(task_metrics(model, tok, task_items))
        write_card(mdir, spec, model.config, card["training"], metrics, unigram)
        done.append(spec.name)
        print(f"{spec.name}: tasks rescored, avg acc {metrics['avg_acc']:.3f}", flush=True)
    return done


def model_card(spec: ModelSpec, cfg, record: dict, metrics: dict, unigram: float) -> tuple[dict, str]:
    """``card.json`` content and the README.md text of one model."""
    card = {
        "name": spec.name, "family": spec.family, "model_type": cfg.model_type,
        "architecture": {
            "hidden_size": spec.hidden, "num_hidden_layers": spec.layers, "num_attention_heads": spec.heads,
            "num_key_value_heads": spec.kv_heads, "intermediate_size": spec.intermediate,
            "vocab_size": cfg.vocab_size, "max_position_embeddings": SEQ_LEN,
            "tie_word_embeddings": bool(cfg.tie_word_embeddings), "qkv_bias": spec.family == "qwen2",
            "rms_norm_eps": cfg.rms_norm_eps,
        },
        "storage_dtype": "bfloat16", "compute_dtype": "float32",
        "training": record,
        **metrics,
        "unigram_entropy_test": round(unigram, 5),
        "metrics_note": "test loss: token-weighted mean cross-entropy (nats/token) of the stored bf16 "
                        "weights computed in float32, padding excluded; accuracies: lm-eval multiple_choice "
                        "convention (acc_norm = log-likelihood per character).",
    }
    a = card["architecture"]
    task_rows = "\n".join(f"| {k} | {v['acc']:.3f} | {v['acc_norm']:.3f} | {v['items']} |"
                          for k, v in metrics["tasks"].items())
    readme = f"""# {spec.name} (complaw model zoo)

A small {'Llama' if spec.family == 'llama' else 'Qwen2'}-architecture causal LM trained from scratch on CPU by
`complaw zoo build` on the pretraining split of the Python standard library's source. It exists so that
compression experiments run offline; it is not useful for anything else.

## Architecture
| field | value |
|---|---|
| model_type | {cfg.model_type} |
| hidden / layers | {a['hidden_size']} / {a['num_hidden_layers']} |
| attention heads / kv heads | {a['num_attention_heads']} / {a['num_key_value_heads']} |
| intermediate (FFN) | {a['intermediate_size']} |
| vocab | {a['vocab_size']} (byte-level BPE) |
| tied embeddings | {a['tie_word_embeddings']} |
| q/k/v bias | {a['qkv_bias']} |
| context | {SEQ_LEN} tokens |
| parameters (total) | {metrics['params']:,} |
| parameters (non-embedding) | {metrics['non_embedding_params']:,} |
| stored as | bfloat16 safetensors, loads as float32 |

## Training
{record['tokens']:,} tokens ({record['steps']} steps x {BATCH_SIZE} x {SEQ_LEN}), AdamW peak lr {spec.lr},
{record['schedule']}, seed {spec.seed}, {THREADS} threads, {record['train_seconds']} s.

## Evaluation (stored weights)
- test loss: **{metrics['test_loss']:.4f}** nats/token over {metrics['test_tokens']:,} test tokens
  (unigram entropy of the test split: {unigram:.4f})
- test loss on the quick-check subset ({metrics['test_subset']}): {metrics['test_loss_subset']:.4f}

| task | acc | acc_norm | items |
|---|---|---|---|
{task_rows}

Chance is 0.25 on every task.
"""
    return card, readme


def _progress_bar(desc: str, total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", mininterval=2.0, leave=True)


#: The corpus by split: split name → ``(relative path, text)`` per document, in sorted file order.
_Splits = dict[str, list[tuple[str, str]]]


def build(out: str | Path | None = None, only: Sequence[str] | None = None, show_progress: bool = True) -> dict:
    """Rebuild the zoo (or the parts named in ``only``) into ``out`` (default: the package's assets).

    Args:
        out: target directory; receives ``splits/``, ``tokenizer/``, ``tasks/``, ``models/NAME/`` and
            ``zoo.json``.
        only: names to rebuild (model names, or ``splits``, ``tokenizer``, ``tasks``); default everything.
            A model built alone uses the tokenizer and tasks already in ``out``, else the shipped ones.
        show_progress: show progress bars.

    Returns:
        the new ``zoo.json`` index.
    """
    out = Path(out) if out is not None else ASSETS
    only_set = check_only(only)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ComplawError(f"--out {str(out)!r}: cannot create the directory ({err.strerror or err}); "
                           "give a writable directory") from None
    torch.set_num_threads(THREADS)
    index_path = out / "zoo.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    seconds: dict[str, float] = dict(index.get("build", {}).get("stage_seconds", {}))
    t_all = time.perf_counter()
    docs = _build_splits(out, only_set, seconds)
    tok = _build_tokenizer(out, docs, only_set, seconds)
    task_items = _build_tasks(out, docs, only_set, seconds)
    test_texts = [t for _, t in docs["test"]]
    test_blocks = lm.token_blocks(tok, test_texts, SEQ_LEN)
    unigram = lm.unigram_entropy(tok, test_texts)
    _build_models(out, tok, docs, test_blocks, task_items, unigram, only_set, seconds, show_progress)
    if "tasks" in only_set:  # models not retrained now: bring their cards' accuracies up to date
        t0 = time.perf_counter()
        rescore_tasks(out, tok, task_items, unigram)
        seconds["rescore"] = round(time.perf_counter() - t0, 1)
    index = _zoo_index(out, tok, docs, task_items, unigram, seconds, t_all, only_set)
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    return index


def check_only(only: Sequence[str] | None) -> set[str]:
    """The stages and models to rebuild (default: all of them); an unknown name is one line, before anything is
    created."""
    known = list(STAGES) + list(SPEC_BY_NAME)
    only_set = set(only or known)
    unknown = only_set - set(known)
    if unknown:
        raise ComplawError(f"--only {','.join(sorted(unknown))}: unknown; choose from {', '.join(known)}")
    return only_set


def _build_splits(out: Path, only_set: set[str], seconds: dict[str, float]) -> _Splits:
    """Step 1: collect and split the corpus (always re-read: the pretraining split is not shipped); with
    ``splits``, write the manifest and the shipped splits."""
    t0 = time.perf_counter()
    files = corpus.collect_files()
    docs = corpus.split_documents(files)
    if "splits" in only_set:
        (out / "corpus_manifest.json").write_text(json.dumps(corpus.manifest(files), indent=1) + "\n")
        for name in corpus.SHIPPED_SPLITS:
            corpus.write_jsonl_gz(out / "splits" / f"{name}.jsonl.gz",
                                  [{"path": p, "text": t} for p, t in docs[name]])
        seconds["splits"] = round(time.perf_counter() - t0, 1)
    return docs


def _build_tokenizer(out: Path, docs: _Splits, only_set: set[str], seconds: dict[str, float]):
    """Step 2: with ``tokenizer``, train the BPE on the pretraining split; then load the tokenizer of ``out``
    (without one, the shipped tokenizer, which is copied into ``out``)."""
    tok_dir = out / "tokenizer"
    if "tokenizer" in only_set:
        t0 = time.perf_counter()
        tok = lm.train_tokenizer((t for _, t in docs["pretrain"]), vocab_size=VOCAB_SIZE)
        tok.save_pretrained(tok_dir)
        seconds["tokenizer"] = round(time.perf_counter() - t0, 1)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tok_dir if tok_dir.is_dir() else ASSETS / "tokenizer")
    if not tok_dir.is_dir():
        tok.save_pretrained(tok_dir)
    return tok


def _build_tasks(out: Path, docs: _Splits, only_set: set[str], seconds: dict[str, float]) -> dict[str, list[dict]]:
    """Step 3: with ``tasks``, build the tasks from the test split; then read the task items of ``out``
    (without them, the shipped ones)."""
    task_dir = out / "tasks"
    if "tasks" in only_set:
        t0 = time.perf_counter()
        for name, items in tasks.build_tasks(docs["test"]).items():
            corpus.write_jsonl_gz(task_dir / f"{name}.jsonl.gz", items)
        seconds["tasks"] = round(time.perf_counter() - t0, 1)
    src_tasks = task_dir if task_dir.is_dir() else ASSETS / "tasks"
    return {name: corpus.read_jsonl_gz(src_tasks / f"{name}.jsonl.gz") for name in tasks.TASKS}


def _train_blocks(tok, docs: _Splits) -> torch.Tensor:
    """The pretraining split as one token stream cut into whole blocks of SEQ_LEN (the rest is dropped)."""
    stream = torch.tensor(lm.token_stream(tok, [t for _, t in docs["pretrain"]]), dtype=torch.long)
    n_blocks = len(stream) // SEQ_LEN
    return stream[: n_blocks * SEQ_LEN].view(n_blocks, SEQ_LEN)


def _build_models(out: Path, tok, docs: _Splits, test_blocks, task_items: dict[str, list[dict]], unigram: float,
                  only_set: set[str], seconds: dict[str, float], show_progress: bool) -> None:
    """Step 4: build every model named in ``only_set`` (in SPECS order), timing each and printing its numbers."""
    to_train = [s for s in SPECS if s.name in only_set]
    if not to_train:
        return
    train_ids = _train_blocks(tok, docs)
    for spec in to_train:
        t0 = time.perf_counter()
        metrics = _build_model(spec, out, tok, train_ids, test_blocks, task_items, unigram, show_progress)
        seconds[spec.name] = round(time.perf_counter() - t0, 1)
        print(f"{spec.name}: test loss {metrics['test_loss']:.4f}, avg acc {metrics['avg_acc']:.3f}, "
              f"{seconds[spec.name]:.0f} s", flush=True)


def _build_model(spec: ModelSpec, out: Path, tok, train_ids: torch.Tensor, test_blocks,
                 task_items: dict[str, list[dict]], unigram: float, show_progress: bool) -> dict:
    """One model: train, store, reload the stored checkpoint, measure it, write its card; returns its metrics."""
    bar = _progress_bar(spec.name, spec.steps) if show_progress else None
    model, record = train_model(spec, tok, train_ids, _bar_progress(bar))
    if bar is not None:
        bar.close()
    mdir = out / "models" / spec.name
    save_model(model, tok, mdir)
    metrics = evaluate_checkpoint(mdir, tok, test_blocks, task_items)
    write_card(mdir, spec, model.config, record, metrics, unigram)
    return metrics


def _bar_progress(bar) -> Callable[[int, int, float], None]:
    """The ``progress`` callback of :func:`train_model`: one step of ``bar`` (if any), the loss every 10 steps."""

    def progress(step, steps, loss):
        if bar is not None:
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss:.3f}")

    return progress


def _split_info(tok, docs: _Splits) -> dict[str, dict]:
    """Documents, characters and tokens of each shipped split; documents and characters of the pretraining split."""
    split_info = {}
    for name in corpus.SHIPPED_SPLITS:
        texts = [t for _, t in docs[name]]
        split_info[name] = {"documents": len(texts), "chars": sum(map(len, texts)),
                            "tokens": len(lm.token_stream(tok, texts))}
    split_info["pretrain"] = {"documents": len(docs["pretrain"]), "chars": sum(len(t) for _, t in docs["pretrain"]),
                              "shipped": False}
    return split_info


def _model_index(out: Path) -> dict[str, dict]:
    """The index entry of every model of SPECS that has a card in ``out``: its key numbers and its spec."""
    models = {}
    for spec in SPECS:
        card_path = out / "models" / spec.name / "card.json"
        if card_path.is_file():
            c = json.loads(card_path.read_text())
            models[spec.name] = {k: c[k] for k in ("family", "model_type", "params", "non_embedding_params",
                                                   "test_loss", "test_loss_subset", "avg_acc", "avg_acc_norm")}
            models[spec.name]["spec"] = asdict(spec)
    return models


def _zoo_index(out: Path, tok, docs: _Splits, task_items: dict[str, list[dict]], unigram: float,
               seconds: dict[str, float], t_all: float, only_set: set[str]) -> dict:
    """Step 5: the ``zoo.json`` index of ``out`` (the caller writes it)."""
    split_info = _split_info(tok, docs)
    models = _model_index(out)
    return {
        "tokenizer": {"type": "byte-level BPE", "vocab_size": len(tok)},
        "seq_len": SEQ_LEN,
        "unigram_entropy_test": round(unigram, 5),
        "splits": split_info,
        "tasks": {name: {"items": len(items), "description": tasks.TASKS[name]} for name, items in task_items.items()},
        "models": models,
        "build": {
            "stage_seconds": seconds,
            "last_run_seconds": round(time.perf_counter() - t_all, 1),
            "last_run_only": sorted(only_set),
            "python": platform.python_version(), "torch": torch.__version__, "threads": THREADS,
        },
    }
