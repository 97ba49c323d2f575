"""The public API: every name re-exported from complaw resolves, and `import complaw` stays light."""

import subprocess
import sys

import complaw


def test_every_export_resolves():
    for name in complaw.__all__:
        assert getattr(complaw, name) is not None, name


def test_import_is_lazy():
    code = "import sys, complaw; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_paper_example_through_the_top_level_api():
    law = complaw.Law.from_params("sengupta2025", direction="higher", alpha=0.98, beta=-1.18, gamma=-0.14)
    assert round(complaw.critical_ratio(law, 0.8).value, 3) == 0.208


def test_safe_name_gives_one_plain_path_component():
    from complaw.models import safe_name

    assert safe_name("Qwen/Qwen2.5-7B") == "Qwen--Qwen2.5-7B"
    for bad in ("../../etc/passwd", "/abs/path", "a\\b", "..", "zoo:llama-m", "x y;rm -rf"):
        out = safe_name(bad)
        assert out and "/" not in out and "\\" not in out and ".." not in out and " " not in out


def test_compress_and_recover_stay_callable_once_their_modules_are_imported():
    """``complaw.compress`` / ``complaw.recover`` are modules and API functions: both uses work in any order."""
    code = ("import complaw, complaw.compress.prunenet, complaw.recover;"
            "m, rec = complaw.compress(complaw.load('zoo:llama-xs'), 'random-ffn', ratio=0.5);"
            "print(callable(complaw.recover), callable(complaw.compress.prunenet.train_policy), rec.param_reduction > 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "True"]
