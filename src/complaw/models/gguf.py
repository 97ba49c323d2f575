"""GGUF files as an input format: dequantised once into a cached safetensors checkpoint.

Anywhere complaw takes a model (``complaw.load``, every CLI command, sweep specs) a ``.gguf`` file — or a
directory holding exactly one ``.gguf`` and no ``config.json`` — is accepted. The first use reads it
through transformers and the ``gguf`` package (``from_pretrained(dir, gguf_file=…)``, which dequantises
every tensor to float32), drops the GGUF quantisation config (transformers refuses to save a model that
still carries it) and writes a plain checkpoint — config, ``model.safetensors``, tokenizer with the chat
template from the GGUF's metadata, ``complaw.json`` naming the source — into
``$COMPLAW_CACHE/gguf/<stem>-<sha256[:16]>``. Later uses find it by the file's hash and are a plain
``from_pretrained``.

The converted model is the *dequantised* model: its weights are the 4-bit (or whatever) values of the
GGUF expanded to float, so its L0 is the dequantised model's, not the original float checkpoint's.

    >>> path = convert_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")     # a directory for from_pretrained
    >>> model = complaw.load("SmolLM2-135M-Instruct.Q4_1.gguf")     # the same, in one step
"""

from __future__ import annotations

import json
import os
import shutil
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from complaw.cache import cache_dir, sha256_file
from complaw.errors import ComplawError

GGUF_MAGIC = b"GGUF"
FORMAT = "complaw.gguf-conversion/1"


def is_gguf_path(path: str | Path) -> bool:
    """True for an existing ``.gguf`` file, or a directory with ``.gguf`` files and no ``config.json``."""
    p = Path(path).expanduser()
    if p.is_file():
        return p.suffix.lower() == ".gguf"
    return p.is_dir() and not (p / "config.json").exists() and any(p.glob("*.gguf"))


def gguf_file_of(path: str | Path) -> Path:
    """The single GGUF file named by ``path`` (the file itself, or the one ``.gguf`` in a directory)."""
    p = Path(path).expanduser()
    if p.is_dir():
        found = sorted(p.glob("*.gguf"))
        if len(found) != 1:
            raise ComplawError(f"model {str(path)!r}: holds {len(found)} .gguf files; name the one to use")
        p = found[0]
    if not p.is_file():
        raise ComplawError(f"model {str(path)!r}: no such .gguf file")
    try:
        with open(p, "rb") as fh:
            magic = fh.read(4)
    except OSError as err:
        raise ComplawError(f"model {str(path)!r}: cannot be read ({err.strerror or err})") from None
    if magic != GGUF_MAGIC:
        raise ComplawError(f"model {str(path)!r}: not a GGUF file (its first bytes are not 'GGUF')")
    return p.resolve()


@lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the cache key: a rewritten file is hashed again
    return sha256_file(path)


def file_digest(file: str | Path) -> str:
    """sha256 of a GGUF file, hashed once per process for an unchanged file (a command resolves its model
    several times: model, tokenizer, record)."""
    st = Path(file).stat()
    return _digest(str(Path(file).resolve()), st.st_size, st.st_mtime_ns)


def converted_dir(file: str | Path, digest: str | None = None) -> Path:
    """Where the conversion of ``file`` lives in the cache (whether or not it exists yet)."""
    file = Path(file)
    digest = digest or file_digest(file)
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in file.stem)[:80] or "model"
    return cache_dir("gguf") / f"{stem}-{digest[:16]}"


def _is_converted(target: Path, digest: str) -> bool:
    meta = target / "complaw.json"
    if not (meta.is_file() and (target / "config.json").is_file()):
        return False
    try:
        return json.loads(meta.read_text()).get("source", {}).get("gguf_sha256") == digest
    except (OSError, json.JSONDecodeError):
        return False


def gguf_metadata(file: str | Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """String/number metadata fields ``keys`` of a GGUF file (missing keys left out)."""
    from gguf import GGUFReader

    reader = GGUFReader(str(file))
    out: dict[str, Any] = {}
    for key in keys:
        field = reader.fields.get(key)
        if field is not None:
            out[key] = field.contents()
    return out


def convert_gguf(file: str | Path, out: str | Path | None = None, *, card: dict[str, Any] | None = None,
                 progress: bool = True) -> Path:
    """Dequantise ``file`` into a safetensors checkpoint directory (cached by the file's sha256).

    Args:
        file: a ``.gguf`` file, or a directory holding exactly one.
        out: target directory (default: ``$COMPLAW_CACHE/gguf/<stem>-<sha16>``). An existing conversion
            of the same file there is reused; a directory that holds anything else is never written.
        card: extra facts for the model card (``card.json``), e.g. the upstream name and licence.
        progress: print one line on stderr when converting.

    Returns:
        The checkpoint directory.

    Raises:
        ComplawError: not a GGUF file, the ``gguf`` package missing, or an architecture transformers
            cannot read from GGUF.
    """
    src = gguf_file_of(file)
    digest = file_digest(src)
    target = Path(out).expanduser() if out is not None else converted_dir(src, digest)
    if _is_converted(target, digest):
        return target
    if target.exists() and any(target.iterdir()):
        raise ComplawError(f"{target}: exists and is not a conversion of {src.name}; give an empty or new directory")
    try:
        import gguf  # noqa: F401 - transformers needs it to read the file
    except ImportError:
        raise ComplawError(f"model {str(file)!r}: reading GGUF needs the 'gguf' package; pip install gguf") from None
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if progress:
        import sys

        print(f"converting {src.name} ({src.stat().st_size / 1e6:.0f} MB, GGUF) to a float32 checkpoint "
              f"in {target} (once; later loads read it from there)", file=sys.stderr, flush=True)
    start = time.perf_counter()
    where, name = str(src.parent), src.name
    try:  # a truncated or foreign GGUF fails in the reader with any of these
        config = AutoConfig.from_pretrained(where, gguf_file=name)
        tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=torch.float32)
    except (ValueError, KeyError, RuntimeError, IndexError, OSError, EOFError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise ComplawError(f"model {str(file)!r}: transformers cannot read this GGUF ({first}); a truncated "
                           "download reads like this too") from None
    # transformers refuses to save a model that carries the GGUF quantiser; the weights are plain floats now.
    model.hf_quantizer = None
    for cfg in (model.config, config):
        if hasattr(cfg, "quantization_config"):
            del cfg.quantization_config
    meta = gguf_metadata(src, ("general.name", "general.architecture", "general.file_type",
                               "tokenizer.chat_template"))
    if not getattr(tokenizer, "chat_template", None) and meta.get("tokenizer.chat_template"):
        tokenizer.chat_template = meta["tokenizer.chat_template"]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ComplawError(f"model {str(file)!r}: the conversion cannot be written to {target.parent} "
                           f"({err.strerror or err}); set COMPLAW_CACHE to a writable directory") from None
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        source = {"gguf_file": str(src), "gguf_sha256": digest, "gguf_bytes": src.stat().st_size,
                  "gguf_name": meta.get("general.name"), "gguf_architecture": meta.get("general.architecture"),
                  "gguf_file_type": meta.get("general.file_type")}
        params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
        model_card = {"what": "dequantised GGUF weights (float32); L0 measured on this model is the "
                              "dequantised model's, not the original float checkpoint's",
                      "model_type": model.config.model_type, "params": params, **(card or {}), "source": source}
        (tmp / "card.json").write_text(json.dumps(model_card, indent=2, default=str))
        (tmp / "complaw.json").write_text(json.dumps(
            {"format": "hf", "conversion": FORMAT, "source": source,
             "convert_time_s": round(time.perf_counter() - start, 2)}, indent=2, default=str))
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # an empty directory the user named, or a concurrent conversion that won
            if _is_converted(target, digest):
                return target
            target.rmdir()
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
