"""Calibration data for calibration-based methods (SliceGPT, layer-drop): one reader for all of them.

``calibration`` may be, for every method alike:

* ``None`` — the zoo's calibration split (``zoo:calibration``);
* a string or path named as everywhere in complaw (:func:`complaw.textdata.load_texts`): ``zoo:SPLIT``, a
  .txt/.jsonl/.json(.gz) file, or a Hugging Face dataset id ``NAME[:CONFIG]`` (e.g.
  ``wikitext:wikitext-2-raw-v1``, SliceGPT's reference data; ``split`` picks its split);
* a list of texts (or of ``{"text": ...}`` records, or ``(name, text)`` pairs);
* token ids: a ``(N, T)`` / ``(T,)`` LongTensor, or a list of id tensors / id lists (padded, with masks).

Texts are tokenised, each document wrapped as ``BOS text EOS`` (whichever the tokenizer has), joined into
one stream and cut into ``seqlen`` windows; ``samples`` of them are drawn without replacement by ``seed``
(all of them when there are fewer). A stream shorter than one window gives a single shorter sequence.

    >>> ids, masks, source = calibration_windows(model, "zoo:calibration", samples=128, seqlen=2048)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from complaw.errors import ComplawError


def _texts_of(items: Sequence[Any], text_field: str) -> list[str]:
    texts = []
    for item in items:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict) and isinstance(item.get(text_field), str):
            texts.append(item[text_field])
        elif isinstance(item, (tuple, list)) and item and isinstance(item[-1], str):
            texts.append(item[-1])  # (name, text) pairs, as the zoo's splits are
        else:
            raise ComplawError(f"calibration item {str(item)[:40]!r}: expected a text, token ids or a tensor")
    return [t for t in texts if t.strip()]


def _tokenizer_for(model: nn.Module | None, tokenizer: Any, source: str) -> Any:
    """The given tokenizer, else the one saved with the model (or the zoo's, for zoo text on a bare model)."""
    if tokenizer is not None:
        return tokenizer
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", "") or getattr(config, "name_or_path", "")
    from complaw.models import load_tokenizer

    if name:
        try:
            return load_tokenizer(name)
        except Exception:  # noqa: BLE001 - reported below as a calibration error
            pass
    if source.startswith("zoo:"):  # the zoo's texts go with the zoo's tokenizer
        from complaw import zoo

        return zoo.load_tokenizer()
    raise ComplawError(
        f"calibration {source}: texts need a tokenizer and none loads from the model "
        f"({name or 'no checkpoint directory'}); pass tokenizer=..., or give token ids instead"
    )


def _pad(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(r.numel() for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    masks = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : r.numel()] = r
        masks[i, : r.numel()] = 1
    return ids, masks


def calibration_windows(model: nn.Module | None, calibration: Any = None, *, tokenizer: Any = None,
                        samples: int = 128, seqlen: int = 2048, seed: int = 0, text_field: str = "text",
                        split: str = "train") -> tuple[torch.Tensor, torch.Tensor, str]:
    """``(input_ids, attention_mask, source)``: at most ``samples`` calibration windows of ``seqlen`` tokens.

    Args:
        model: the model to calibrate (its tokenizer and ``max_position_embeddings``, which caps ``seqlen``);
            may be None when a tokenizer is given or the data are token ids.
        calibration: see the module docstring.
        samples: number of windows N (fewer when the data are short).
        seqlen: window length T in tokens.
        seed: which windows are drawn.
        text_field: the text column of .jsonl/.json/hub sources and of record lists.
        split: the split of a hub dataset.
    """
    if samples < 1 or seqlen < 1:
        raise ComplawError(f"calibration samples={samples}, seqlen={seqlen}: both must be >= 1")
    max_pos = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if max_pos:
        seqlen = min(seqlen, int(max_pos))
    if isinstance(calibration, torch.Tensor):
        ids = calibration.long()
        ids = ids[None] if ids.dim() == 1 else ids
        if ids.dim() != 2 or ids.numel() == 0:
            raise ComplawError("calibration tensor: expected token ids of shape (batch, seq)")
        ids = ids[:samples, :seqlen]
        return ids, torch.ones_like(ids), "token ids"
    if isinstance(calibration, (str, Path)) or calibration is None:
        from complaw.textdata import load_texts

        source = "zoo:calibration" if calibration is None else str(calibration)
        texts = _texts_of(load_texts(source, split=split, text_field=text_field, what="calibration"), text_field)
    elif isinstance(calibration, Sequence) and not isinstance(calibration, (bytes, bytearray)):
        if not calibration:
            raise ComplawError("calibration: empty; give a few texts or token-id tensors")
        if all(isinstance(c, torch.Tensor) for c in calibration) or all(
                isinstance(c, list) and c and all(isinstance(i, int) for i in c) for c in calibration):
            rows = [torch.as_tensor(c).long().flatten()[:seqlen] for c in calibration]
            rows = [r for r in rows if r.numel() > 0][:samples]
            if not rows:
                raise ComplawError("calibration: the token-id sequences are all empty")
            return *_pad(rows), "token ids"
        texts, source = _texts_of(calibration, text_field), f"{len(calibration)} texts"
    else:
        raise ComplawError(
            f"calibration: unsupported value of type {type(calibration).__name__}; give a path, zoo:SPLIT, "
            "a dataset id, a list of texts, or token ids"
        )
    tok = _tokenizer_for(model, tokenizer, source)
    bos, eos = getattr(tok, "bos_token_id", None), getattr(tok, "eos_token_id", None)
    stream: list[int] = []
    for text in texts:
        if bos is not None:
            stream.append(int(bos))
        # verbose=False: long documents are cut into windows below, the "too long" warning does not apply
        stream.extend(tok(text, add_special_tokens=False, verbose=False)["input_ids"])
        if eos is not None:
            stream.append(int(eos))
    if not stream:
        raise ComplawError(f"calibration {source}: no text to calibrate on")
    flat = torch.tensor(stream, dtype=torch.long)
    n_windows = len(stream) // seqlen
    if n_windows == 0:
        ids = flat[None]
    else:
        chunks = flat[: n_windows * seqlen].view(n_windows, seqlen)
        pick = torch.randperm(n_windows, generator=torch.Generator().manual_seed(seed))[: min(samples, n_windows)]
        ids = chunks[pick.sort().values]
    return ids, torch.ones_like(ids), source
