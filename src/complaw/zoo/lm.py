"""Language-model helpers of the zoo: the tokenizer, token blocks, test loss and multiple-choice scoring.

The loss is the token-weighted mean cross-entropy (nats/token) over fixed blocks of the split's token
stream (each document is ``<s> text </s>``; the stream is cut into ``seq_len`` blocks, the last partial
block is padded and the padding is excluded). Multiple-choice scoring follows lm-eval's
``loglikelihood`` for ``multiple_choice`` tasks exactly (no BOS, trailing context whitespace moved to the
continuation, ``acc_norm`` = log-likelihood per character of the choice), so the zoo's cards agree with
``lm_eval.simple_evaluate``.

    >>> tok = train_tokenizer(texts, vocab_size=4096)
    >>> blocks = token_blocks(tok, texts, seq_len=256)
    >>> loss = mean_loss(model, blocks)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

BOS, EOS, PAD = "<s>", "</s>", "<pad>"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096):
    """Train a byte-level BPE on ``texts`` and wrap it as a Hugging Face fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(list(texts), trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                  model_max_length=1024)
    return tok


def token_stream(tok, texts: Sequence[str]) -> list[int]:
    """Concatenate ``<s> text </s>`` for every document into one list of token ids."""
    ids: list[int] = []
    encoded = tok(list(texts), add_special_tokens=False)["input_ids"]
    for doc in encoded:
        ids.append(tok.bos_token_id)
        ids.extend(doc)
        ids.append(tok.eos_token_id)
    return ids


def token_blocks(tok, texts: Sequence[str], seq_len: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The split as ``(input_ids, attention_mask)`` blocks of ``seq_len``; the last block is padded."""
    ids = token_stream(tok, texts)
    n_blocks = math.ceil(len(ids) / seq_len)
    pad = n_blocks * seq_len - len(ids)
    x = torch.tensor(ids + [tok.pad_token_id] * pad, dtype=torch.long).view(n_blocks, seq_len)
    mask = torch.ones_like(x)
    if pad:
        mask[-1, seq_len - pad:] = 0
    return x, mask


@torch.no_grad()
def loss_sums(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              batch_size: int = 16) -> tuple[float, int]:
    """Summed next-token cross-entropy (nats) and number of predicted tokens, padding excluded."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(input_ids), batch_size):
        x, m = input_ids[i:i + batch_size], attention_mask[i:i + batch_size]
        logits = model(input_ids=x, attention_mask=m).logits.float()
        # position t predicts token t+1; a target counts only if it is a real (non-pad) token
        targets = x[:, 1:]
        valid = m[:, 1:].bool()
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none"
        ).view_as(targets)
        total += float(nll[valid].double().sum())
        count += int(valid.sum())
    return total, count


def mean_loss(model, blocks: tuple[torch.Tensor, torch.Tensor], batch_size: int = 16) -> float:
    """Token-weighted mean cross-entropy (nats/token) over ``blocks``."""
    total, count = loss_sums(model, *blocks, batch_size=batch_size)
    return total / max(count, 1)


def unigram_entropy(tok, texts: Sequence[str]) -> float:
    """Entropy (nats/token) of the split's own unigram distribution: the loss of the best context-free model
    fitted to the test split itself, over the same predicted tokens as :func:`mean_loss` (BOS never predicted)."""
    ids = token_stream(tok, texts)
    counts = Counter(ids[1:])
    n = sum(counts.values())
    return -sum(c / n * math.log(c / n) for c in counts.values())


# --- multiple choice, as lm-eval's HFLM computes it ------------------------------------------------------
def _encode_pair(tok, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's ``_encode_pair``: trailing context whitespace moves to the continuation, the continuation's
    tokens are what the whole string adds after the context's tokens."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    return ctx, whole[len(ctx):]


def _max_length(model) -> int:
    return int(getattr(model.config, "max_position_embeddings", 2048) or 2048)


@torch.no_grad()
def loglikelihoods(model, tok, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> list[float]:
    """Log-likelihood of each ``(context, continuation)`` pair, computed as lm-eval's HFLM does: contexts
    left-truncated so that context + continuation fit ``max_position_embeddings`` tokens."""
    model.eval()
    max_length = _max_length(model)
    seqs, spans = [], []
    for context, continuation in pairs:
        ctx, cont = _encode_pair(tok, context, continuation) if context else ([tok.eos_token_id], [])
        inp = (ctx + cont)[-(max_length + 1):][:-1]
        seqs.append(inp)
        spans.append((len(inp) - len(cont), cont))
    # batch sequences of similar length together (less padding); results go back in input order
    order = sorted(range(len(seqs)), key=lambda k: len(seqs[k]))
    out: list[float] = [0.0] * len(seqs)
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        chunk = [seqs[k] for k in idx]
        width = max(len(s) for s in chunk)
        x = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
        m = torch.zeros_like(x)
        for i, s in enumerate(chunk):  # right padding: positions of real tokens are unchanged
            x[i, :len(s)] = torch.tensor(s)
            m[i, :len(s)] = 1
        logp = torch.log_softmax(model(input_ids=x, attention_mask=m).logits.float(), dim=-1)
        for i, k in enumerate(idx):
            start, cont = spans[k]
            # logits at input position t predict token t+1, so the continuation is read off the
            # last len(cont) positions of the input
            rows = logp[i, start:start + len(cont)]
            out[k] = float(rows.gather(1, torch.tensor(cont).view(-1, 1)).sum())
    return out


def multiple_choice_accuracy(model, tok, items: Sequence[dict], batch_size: int = 32) -> dict[str, float]:
    """``acc`` and ``acc_norm`` (log-likelihood per character of the choice) over items
    ``{"context", "choices", "label"}``, as lm-eval reports them."""
    pairs = [(item["context"], c) for item in items for c in item["choices"]]
    lls = loglikelihoods(model, tok, pairs, batch_size=batch_size)
    hits = hits_norm = 0
    pos = 0
    for item in items:
        k = len(item["choices"])
        ll = lls[pos:pos + k]
        pos += k
        norm = [v / max(len(c), 1) for v, c in zip(ll, item["choices"], strict=True)]
        hits += int(max(range(k), key=ll.__getitem__) == item["label"])
        hits_norm += int(max(range(k), key=norm.__getitem__) == item["label"])
    n = max(len(items), 1)
    return {"acc": hits / n, "acc_norm": hits_norm / n}
