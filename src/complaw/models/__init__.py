"""Model-family adapters and loading/saving of (compressed) models."""

from complaw.models.adapters import FamilyAdapter, get_adapter, register_adapter, supported_families

__all__ = ["FamilyAdapter", "get_adapter", "register_adapter", "supported_families"]
from complaw.models.io import load, load_tokenizer, register_loader, safe_name, save  # noqa: E402

__all__ += ["load", "load_tokenizer", "register_loader", "safe_name", "save"]
