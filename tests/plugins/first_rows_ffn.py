"""A compression method registered from outside complaw, as a user's plugin would be.

Every ``tests/plugins/*.py`` is named in ``$COMPLAW_PLUGINS`` by ``conftest.py``, so this one registration makes
the method appear in ``complaw methods``, in the tests parametrised over the method registry
(``tests/test_method_contract.py``) and in sweeps — without editing any other file.
"""

from complaw.compress import register_method


@register_method("first-rows-ffn", description="test plugin: keep the first floor((1-r)·n) FFN neurons per layer")
def first_rows_ffn(model, ratio: float, *, seed: int = 0, round_to: int = 1):
    """Keep the first ``floor((1 - ratio) * n)`` MLP neurons of every layer (deterministic; ``seed`` unused).

    Args:
        round_to: round the kept size down to a multiple of this.
    """
    import torch

    from complaw.compress.ffn import ffn_size, kept_rows, slice_ffn_rows
    from complaw.models.adapters import get_adapter

    n = ffn_size(model)
    k = kept_rows(n, ratio, round_to)
    layers = get_adapter(model).layers_of(model)
    if k < n:
        with torch.no_grad():
            slice_ffn_rows(model, [torch.arange(k) for _ in layers])
    return model, {"kept_per_layer": [k] * len(layers)}
