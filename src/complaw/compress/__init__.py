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

from complaw.compress import ffn as _ffn  # noqa: E402,F401  (registers 'random-ffn', 'magnitude-ffn', 'maxabs-ffn')
from complaw.compress import layerdrop as _layerdrop  # noqa: E402,F401  (registers 'layer-drop')
from complaw.compress import prunenet as _prunenet  # noqa: E402,F401  (registers 'prunenet')
from complaw.compress import quant as _quant  # noqa: E402,F401  (registers rtn-int8/4/3, magnitude-sparse, sparse-2:4)
from complaw.compress import slicegpt as _slicegpt  # noqa: E402,F401  (registers 'slicegpt')
