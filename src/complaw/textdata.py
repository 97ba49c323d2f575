"""Text datasets for recovery fine-tuning, calibration and test loss, and their cutting into token blocks.

A dataset is named the way users name it elsewhere: ``zoo:test`` (a split of the bundled corpus), a local
``.txt`` / ``.jsonl`` / ``.json`` file (optionally gzipped), or a Hugging Face dataset id
(``wikitext:wikitext-2-raw-v1``, ``split`` chosen separately). Texts are concatenated with EOS between
documents and cut into fixed blocks of ``seq_len`` tokens, so no block needs padding; one *sample* of
recovery data is one block.

    >>> texts = load_texts("zoo:rft")
    >>> blocks = token_blocks(texts, tokenizer, seq_len=128)     # LongTensor (n_blocks, 128)
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import torch

from complaw.checks import input_file
from complaw.errors import ComplawError

_LOCAL_SUFFIXES = (".txt", ".jsonl", ".json", ".ndjson")


def _open_text(path: Path, what: str) -> str:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return fh.read()
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ComplawError(f"{what} {path}: not UTF-8 text (a binary file?); give a .txt/.jsonl/.json text "
                           "file") from None
    except (OSError, EOFError) as err:  # unreadable, or a damaged .gz (BadGzipFile is an OSError)
        raise ComplawError(f"{what} {path}: cannot be read ({getattr(err, 'strerror', None) or err})") from None


def _kind(path: Path, what: str) -> str:
    """The text type of a file (``.txt``, ``.jsonl``, ...; under a ``.gz``), refused before reading when unknown."""
    kind = path.suffixes[-2] if path.suffix == ".gz" and len(path.suffixes) > 1 else path.suffix
    if kind not in _LOCAL_SUFFIXES:
        raise ComplawError(f"{what} {path}: unknown text file type; use .txt, .jsonl or .json (optionally .gz)")
    return kind


def _texts_from_file(path: Path, text_field: str, what: str = "dataset") -> list[str]:
    kind = _kind(path, what)
    raw = _open_text(path, what)
    if kind == ".txt":
        return [raw]
    try:
        if kind in (".jsonl", ".ndjson"):
            records = [json.loads(line) for line in raw.splitlines() if line.strip()]
        else:
            records = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ComplawError(f"{what} {path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    texts = []
    for i, rec in enumerate(records if isinstance(records, list) else [records]):
        if isinstance(rec, str):
            texts.append(rec)
        elif isinstance(rec, dict) and isinstance(rec.get(text_field), str):
            texts.append(rec[text_field])
        else:
            raise ComplawError(f"{what} {path}: record {i + 1} has no string field {text_field!r}; "
                               "name it with text_field")
    return texts


def _sniff_text(path: Path, what: str, size: int = 1 << 16) -> None:
    """Refuse a binary file from its first 64 KiB: not UTF-8 (a cut multi-byte character at the end is fine)."""
    import codecs

    _kind(path, what)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            head = fh.read(size)
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        raise ComplawError(f"{what} {path}: not UTF-8 text (a binary file?); give a .txt/.jsonl/.json text "
                           "file") from None
    except (OSError, EOFError) as err:  # a damaged .gz (BadGzipFile is an OSError)
        raise ComplawError(f"{what} {path}: cannot be read ({getattr(err, 'strerror', None) or err})") from None


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.endswith(_LOCAL_SUFFIXES) or name.endswith(".gz")


def check_source(source, what: str = "dataset") -> Path | None:
    """Check a dataset name before any work: a local file must exist, be a readable file of a text type
    (.txt/.jsonl/.json, optionally .gz) and start as UTF-8 text.

    Returns the file's path, or None for a zoo split, a hub dataset id or in-memory texts (checked when read).

    Raises:
        ComplawError: a missing, unreadable or directory path, naming ``what`` (``calibration``, ``test data``).
    """
    if not isinstance(source, (str, Path)) or str(source).startswith("zoo:"):
        return None
    name = str(source)
    path = Path(name).expanduser()
    if path.exists():
        if path.is_dir():
            raise ComplawError(f"{what} {name}: is a directory; give a .txt/.jsonl/.json file")
        input_file(path, what)
        _sniff_text(path, what)
        return path
    if _looks_local(name):
        raise ComplawError(f"{what} {name}: no such file; give an existing .txt/.jsonl file, a zoo split "
                           "(zoo:rft, zoo:test, zoo:calibration) or a Hugging Face dataset id")
    return None


def load_texts(source: str | Path | list[str], *, split: str = "train", text_field: str = "text",
               what: str = "dataset") -> list[str]:
    """The documents of a dataset (see module docstring for the accepted names).

    Args:
        what: what the dataset is for, named in error messages (``calibration``, ``test data``).

    Raises:
        ComplawError: a missing file, an unreadable one, or a hub dataset that cannot be loaded here.
    """
    if isinstance(source, list):
        return [str(t) for t in source]
    name = str(source)
    if name.startswith("zoo:"):
        from complaw import zoo

        return zoo.load_split(name)
    path = check_source(name, what)
    if path is not None:
        texts = _texts_from_file(path, text_field, what)
        if not texts or not any(t.strip() for t in texts):
            raise ComplawError(f"{what} {name}: holds no text")
        return texts
    return _hub_texts(name, split, text_field, what)


def _hub_texts(name: str, split: str, text_field: str, what: str = "dataset") -> list[str]:
    from complaw.models.io import hub_reachable

    repo, _, config = name.partition(":")
    hub_reachable()  # an unreachable hub switches offline mode on: the local datasets cache, no retries
    try:
        import datasets

        ds = datasets.load_dataset(repo, config or None, split=split)
    except Exception as err:  # the datasets library raises many types for "not reachable / not found"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ComplawError(f"{what} {name!r} (split {split!r}): no such local file, and could not be loaded as a "
                           f"Hugging Face dataset ({first}); offline, use a local .txt/.jsonl file or a zoo "
                           "split") from None
    if text_field not in ds.column_names:
        raise ComplawError(f"{what} {name!r}: no column {text_field!r}; columns are {', '.join(ds.column_names)}")
    return [t for t in ds[text_field] if isinstance(t, str)]


def starts_with_bos(tokenizer) -> bool:
    """True when the tokenizer puts a BOS token before every text it encodes (Gemma, Llama-2/3 do;
    SmolLM2 and the zoo's do not): such models are trained to see it first and degrade badly without it
    (Gemma-3-270M on stdlib code: 4.72 nats/token without, 2.76 with; BENCHMARKS.md)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    try:
        ids = tokenizer("a", verbose=False)["input_ids"]
    except TypeError:  # tokenizer-likes without the verbose flag
        ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0] == bos


def token_blocks(texts: list[str], tokenizer, seq_len: int, max_blocks: int | None = None) -> torch.Tensor:
    """Concatenate the texts (EOS between documents) and cut them into full blocks of ``seq_len`` tokens.

    When the tokenizer starts every text with BOS (:func:`starts_with_bos`), every block starts with BOS
    followed by ``seq_len - 1`` tokens of the stream, as the model saw its inputs in training.

    Returns:
        A LongTensor of shape (n_blocks, seq_len); the tail shorter than a block is dropped.
    """
    if seq_len < 2:
        raise ComplawError(f"seq_len {seq_len}: must be at least 2 tokens")
    eos = tokenizer.eos_token_id
    bos = tokenizer.bos_token_id if starts_with_bos(tokenizer) else None
    width = seq_len - 1 if bos is not None else seq_len  # stream tokens per block
    ids: list[int] = []
    need = None if max_blocks is None else max_blocks * width
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
        if eos is not None:
            ids.append(eos)
        if need is not None and len(ids) >= need:
            break
    n = len(ids) // width
    if max_blocks is not None:
        n = min(n, max_blocks)
    if n == 0:
        raise ComplawError(f"dataset has {len(ids)} tokens: fewer than one block of seq_len {seq_len}")
    blocks = torch.tensor(ids[: n * width], dtype=torch.long).view(n, width)
    if bos is not None:
        blocks = torch.cat([torch.full((n, 1), bos, dtype=torch.long), blocks], dim=1)
    return blocks
