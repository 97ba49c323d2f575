"""complaw: compression laws for LLMs.

Compress a model (PruneNet, SliceGPT, baselines), recover it with LoRA, evaluate it (test loss, lm-eval
zero-shot accuracy, runtime), store every result, fit compression laws and turn them into decisions.

    >>> import complaw
    >>> res = complaw.fit("results.csv", "sengupta2025", mapping="L=acc L0=base r=ratio D=rft", direction="higher")
    >>> complaw.critical_ratio(complaw.Law.from_fit(res), 0.8).value

The public API is re-exported here and imported lazily, so ``import complaw`` stays fast (torch and
transformers load on first use of a name that needs them).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # laws
    "fit": "complaw.laws", "fit_groups": "complaw.laws", "compare": "complaw.laws", "validate": "complaw.laws",
    "fit_each": "complaw.laws",  # one verdict per (group, form): failures as rows, not an abort
    "load_results": "complaw.laws", "get_form": "complaw.laws", "available_forms": "complaw.laws",
    "register_form": "complaw.laws", "DUnit": "complaw.laws", "FitResult": "complaw.laws",
    "LawForm": "complaw.laws", "simulate": "complaw.laws", "SCHEMES": "complaw.laws",
    # decisions
    "Law": "complaw.decide", "critical_ratio": "complaw.decide", "min_rft_data": "complaw.decide",
    "speedup": "complaw.decide", "speed_law": "complaw.decide", "plan": "complaw.decide",
    "CostModel": "complaw.decide",
    # models and compression
    "load": "complaw.models", "save": "complaw.models", "get_adapter": "complaw.models",
    "load_tokenizer": "complaw.models",
    "compress": "complaw.compress", "available_methods": "complaw.compress", "register_method": "complaw.compress",
    "CompressionRecord": "complaw.compress",
    # recovery, evaluation, the recipe
    "recover": "complaw.recover", "RFTConfig": "complaw.recover",
    "lm_loss": "complaw.evaluate", "zero_shot": "complaw.evaluate", "measure_runtime": "complaw.evaluate",
    "load_texts": "complaw.textdata", "token_blocks": "complaw.textdata",
    "run_experiment": "complaw.recipe", "ExperimentConfig": "complaw.recipe", "ExperimentRecord": "complaw.recipe",
    "EvalConfig": "complaw.recipe", "RuntimeConfig": "complaw.recipe", "load_experiment": "complaw.recipe",
    # sweeps and reports
    "run_sweep": "complaw.sweep", "load_spec": "complaw.sweep", "SweepSpec": "complaw.sweep",
    "ResultStore": "complaw.sweep", "build_report": "complaw.report",
    "ComplawError": "complaw.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'complaw' has no attribute {name!r}")


def callable_module(module_name: str, fn) -> None:
    """Make the module ``module_name`` callable as ``fn``.

    ``complaw.compress`` and ``complaw.recover`` are both a module of the package and a function of the API. Once
    the module is imported, Python binds it as the package's attribute, so ``complaw.compress(model, …)`` would
    reach the module; calling the module calls the function, and ``complaw.compress.prunenet`` still works.
    """
    import sys
    import types

    module = sys.modules[module_name]
    module.__class__ = type("CallableModule", (types.ModuleType,),
                            {"__call__": lambda self, *args, **kwargs: fn(*args, **kwargs), "__doc__": module.__doc__})


def __dir__():
    return sorted(set(globals()) | set(__all__))
