"""Compression methods, registered by name. Importing this package registers the built-ins."""

from complaw.compress.registry import (
    CompressionRecord,
    available_methods,
    compress,
    count_parameters,
    get_method,
    register_method,
)

__all__ = [
    "CompressionRecord",
    "available_methods",
    "compress",
    "count_parameters",
    "get_method",
    "register_method",
]
