"""The embedded default: a bundled family of small trained Llama and Qwen2 models, their corpus and tasks.

No model or dataset hub is reachable on complaw's own machines, so the package ships what the pipeline needs
to run end to end on CPU: six small causal LMs trained on the Python standard library's source
(``llama-xs`` … ``llama-l``, ``qwen-s``, ``qwen-m``), a byte-level BPE tokenizer, the recovery-fine-tuning,
calibration and test splits, and three multiple-choice zero-shot tasks in lm-eval's format.
``complaw zoo build`` regenerates all of it (see :mod:`complaw.zoo.build`).

    >>> from complaw import zoo
    >>> path = zoo.resolve_model("zoo:llama-m")          # a directory for from_pretrained
    >>> texts = zoo.load_split("test")                    # one string per document
    >>> include = zoo.task_include_path()                 # for lm_eval.tasks.TaskManager(include_path=...)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from complaw.cache import cache_root
from complaw.errors import ComplawError

ASSETS = Path(__file__).parent / "assets"
PREFIX = "zoo:"
SPLITS = ("rft", "calibration", "test")


@dataclass(frozen=True)
class ZooModel:
    """One bundled model, as listed by :func:`list_models` (numbers from its ``card.json``)."""

    name: str
    family: str
    model_type: str
    path: Path
    params: int
    non_embedding_params: int
    test_loss: float
    avg_acc: float

    @property
    def id(self) -> str:
        return PREFIX + self.name


def _strip(name: str) -> str:
    name = str(name).strip()
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


@lru_cache(maxsize=1)
def _index() -> dict:
    path = ASSETS / "zoo.json"
    if not path.is_file():
        raise ComplawError(f"{path}: the model zoo is not built; run `complaw zoo build`")
    return json.loads(path.read_text())


def index() -> dict:
    """The zoo's ``zoo.json`` index: models, tasks, splits, unigram entropy, build timings."""
    return _index()


def model_names() -> list[str]:
    return [name for name in _index()["models"] if (ASSETS / "models" / name / "config.json").is_file()]


def card(name: str) -> dict:
    """The ``card.json`` of a zoo model."""
    return json.loads((resolve_model(name) / "card.json").read_text())


def list_models() -> list[ZooModel]:
    """Every bundled model, smallest first within each family."""
    out = []
    for name in model_names():
        c = _index()["models"][name]
        out.append(ZooModel(name=name, family=c["family"], model_type=c["model_type"],
                            path=ASSETS / "models" / name, params=c["params"],
                            non_embedding_params=c["non_embedding_params"], test_loss=c["test_loss"],
                            avg_acc=c["avg_acc"]))
    return out


def resolve_model(name: str) -> Path:
    """The checkpoint directory of zoo model ``name`` (``zoo:llama-m`` or ``llama-m``).

    Raises:
        ComplawError: the name is not a zoo model (the message lists those that are).
    """
    key = _strip(name)
    path = ASSETS / "models" / key
    if key and (path / "config.json").is_file():
        return path
    raise ComplawError(f"model {name!r}: not in the zoo; available: "
                       f"{', '.join(PREFIX + n for n in model_names()) or 'none (run `complaw zoo build`)'}")


def tokenizer_path() -> Path:
    """Directory of the zoo's tokenizer (``AutoTokenizer.from_pretrained`` it)."""
    return ASSETS / "tokenizer"


def load_tokenizer(name: str | Path | None = None):
    """The zoo tokenizer, exactly as the models were trained with it (from ``tokenizer.json``).

    Prefer this to ``AutoTokenizer.from_pretrained(model_dir)`` for the Qwen2 models: transformers v5 maps
    every ``model_type: qwen2`` directory to ``Qwen2Tokenizer``, which replaces the saved pre-tokenizer
    with Qwen's own regex and so splits newlines from indentation differently from training.
    """
    from transformers import PreTrainedTokenizerFast

    path = tokenizer_path() if name is None else (Path(name) if Path(str(name)).is_dir() else resolve_model(str(name)))
    cfg = json.loads((path / "tokenizer_config.json").read_text())
    return PreTrainedTokenizerFast(tokenizer_file=str(path / "tokenizer.json"), bos_token=cfg["bos_token"],
                                   eos_token=cfg["eos_token"], pad_token=cfg["pad_token"],
                                   model_max_length=cfg.get("model_max_length", 1024))


# --- splits ------------------------------------------------------------------------------------------
def split_path(name: str) -> Path:
    """The gzipped JSONL file (one ``{"path", "text"}`` per document) of split ``rft``/``calibration``/``test``."""
    key = _strip(name)
    if key not in SPLITS:
        raise ComplawError(f"split {name!r}: unknown; available: {', '.join(PREFIX + s for s in ALL_SPLITS)}")
    return ASSETS / "splits" / f"{key}.jsonl.gz"


resolve_split = split_path

# English prose that every Python install carries: the language reference's topic texts behind
# ``help("topics")``, in the standard library's ``pydoc_data/topics.py`` (not shipped: read at run time).
PROSE_SPLITS = ("prose-test", "prose-calibration", "prose-rft")
ALL_SPLITS = SPLITS + PROSE_SPLITS


def prose_documents(split: str) -> list[tuple[str, str]]:
    """``(topic, text)`` documents of a prose split, in topic order.

    Each topic goes to exactly one split by the sha256 of its name (first byte mod 4: 0 → test,
    1 → calibration, 2–3 → rft), so the assignment never depends on the Python version, only the texts do.
    """
    key = _strip(split)
    if key not in PROSE_SPLITS:
        raise ComplawError(f"split {split!r}: unknown; available: {', '.join(PREFIX + s for s in ALL_SPLITS)}")
    try:
        from pydoc_data.topics import topics
    except ImportError:  # pragma: no cover - stripped Python builds
        raise ComplawError(f"split {split!r}: this Python has no pydoc_data.topics to read prose from") from None
    bucket = {"prose-test": (0,), "prose-calibration": (1,), "prose-rft": (2, 3)}[key]
    return [(name, text) for name, text in sorted(topics.items())
            if hashlib.sha256(name.encode()).digest()[0] % 4 in bucket and text.strip()]


def load_split(name: str) -> list[str]:
    """The documents of a zoo split (``zoo:test`` or ``test``): one string per stdlib file, or per
    language-reference topic for the ``prose-*`` splits."""
    if _strip(name) in PROSE_SPLITS:
        return [text for _, text in prose_documents(name)]
    from complaw.zoo.corpus import read_jsonl_gz

    return [row["text"] for row in read_jsonl_gz(split_path(name))]


def is_zoo_name(name: str) -> bool:
    return str(name).startswith(PREFIX)


# --- tasks -------------------------------------------------------------------------------------------
def task_names() -> list[str]:
    """Names of the zoo's lm-eval tasks (``zoo_nextline``, ``zoo_identifier``, ``zoo_docstring``)."""
    from complaw.zoo.tasks import TASKS

    return list(TASKS)


def task_items(name: str) -> list[dict]:
    """The items ``{"context", "choices", "label", "source"}`` of a zoo task."""
    from complaw.zoo.corpus import read_jsonl_gz

    if name not in task_names():
        raise ComplawError(f"task {name!r}: not a zoo task; available: {', '.join(task_names())}")
    return read_jsonl_gz(ASSETS / "tasks" / f"{name}.jsonl.gz")


def task_include_path(directory: str | Path | None = None) -> Path:
    """Write the zoo tasks' lm-eval YAMLs and their JSONL data (absolute paths) into a directory and return
    it, for ``lm_eval.tasks.TaskManager(include_path=...)``.

    The directory defaults to ``$COMPLAW_CACHE/zoo_tasks/<content hash>`` (else a temporary directory), so
    the configs point at real files wherever complaw is installed. Also sets ``HF_DATASETS_OFFLINE`` and
    ``HF_HUB_OFFLINE`` (the tasks read local files only).
    """
    from complaw.zoo.tasks import task_yaml

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sources = {name: ASSETS / "tasks" / f"{name}.jsonl.gz" for name in task_names()}
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources.values())).hexdigest()[:16]
    candidates = [Path(directory)] if directory is not None else [
        cache_root() / "zoo_tasks" / digest, Path(tempfile.gettempdir()) / f"complaw-zoo-tasks-{digest}"]
    for target in candidates:
        try:
            target.mkdir(parents=True, exist_ok=True)
            for name, src in sources.items():
                data = target / f"{name}.jsonl"
                if not data.is_file():
                    from complaw.zoo.corpus import read_jsonl_gz

                    tmp = data.with_suffix(".tmp")
                    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in read_jsonl_gz(src)))
                    tmp.replace(data)
                (target / f"{name}.yaml").write_text(task_yaml(name, str(data.resolve())))
            return target
        except OSError:
            continue
    raise ComplawError(f"cannot write the zoo task files into any of {', '.join(map(str, candidates))}")


def shipped_bytes() -> int:
    """Total size of everything under the zoo's assets (models, tokenizer, splits, tasks)."""
    return sum(p.stat().st_size for p in ASSETS.rglob("*") if p.is_file())
