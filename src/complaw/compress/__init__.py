"""Compression methods, registered by name.

The built-in methods live one per module (``ffn``, ``layerdrop``, ``prunenet``, ``quant``, ``slicegpt``); the
registry imports them on its first use (:data:`~complaw.compress.registry.METHODS`), so importing this package
stays light and a new module is one line in the registry's ``builtins``, or a plugin (:mod:`complaw.registry`).
"""

from complaw import callable_module
from complaw.compress.registry import (
    METHODS,
    CompressionRecord,
    available_methods,
    compress,
    get_method,
    register_method,
)
from complaw.models.params import count_parameters

callable_module(__name__, compress)  # complaw.compress(model, method, ratio) calls compress()

__all__ = [
    "METHODS",
    "CompressionRecord",
    "available_methods",
    "compress",
    "count_parameters",
    "get_method",
    "register_method",
]
