"""token_blocks: fixed blocks from a document stream, with BOS first for tokenizers that expect it."""

from __future__ import annotations

import torch

from complaw.textdata import starts_with_bos, token_blocks


class CharTokenizer:
    """One id per character (ord % 50 + 10); BOS = 1, EOS = 2; optionally adds BOS like Gemma's."""

    bos_token_id, eos_token_id = 1, 2

    def __init__(self, adds_bos: bool):
        self.adds_bos = adds_bos

    def __call__(self, text, add_special_tokens=True, verbose=True):
        ids = [ord(c) % 50 + 10 for c in text]
        return {"input_ids": ([self.bos_token_id] if self.adds_bos and add_special_tokens else []) + ids}


def test_blocks_without_bos_are_the_plain_stream():
    tok = CharTokenizer(adds_bos=False)
    assert not starts_with_bos(tok)
    blocks = token_blocks(["abcdef", "ghij"], tok, seq_len=4)
    stream = tok("abcdef")["input_ids"] + [2] + tok("ghij")["input_ids"] + [2]
    assert torch.equal(blocks, torch.tensor(stream[:12]).view(3, 4))


def test_blocks_start_with_bos_when_the_tokenizer_adds_one():
    tok = CharTokenizer(adds_bos=True)
    assert starts_with_bos(tok)
    blocks = token_blocks(["abcdef", "ghij"], tok, seq_len=4, max_blocks=3)
    stream = tok("abcdef", add_special_tokens=False)["input_ids"] + [2] + tok("ghij", add_special_tokens=False)["input_ids"]
    assert blocks.shape == (3, 4)
    assert (blocks[:, 0] == 1).all()  # BOS, then 3 stream tokens per block, none skipped or repeated
    assert blocks[:, 1:].flatten().tolist() == stream[:9]
