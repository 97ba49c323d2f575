"""The law engine: forms, data loading, fitting, diagnostics, validation.

    >>> from complaw.laws import fit, fit_groups, compare, validate, get_form
"""

from complaw.laws.data import LawData, load_results, parse_mapping, read_table
from complaw.laws.diagnostics import Diagnostic
from complaw.laws.fit import Estimate, FitFailure, FitResult, compare, fit, fit_each, fit_groups
from complaw.laws.forms import DUnit, LawForm, available_forms, get_form, register_form
from complaw.laws.synthetic import simulate
from complaw.laws.validate import SCHEMES, ValidationResult, validate

__all__ = [
    "SCHEMES", "DUnit", "Diagnostic", "Estimate", "FitFailure", "FitResult", "LawData", "LawForm", "ValidationResult",
    "available_forms", "compare", "fit", "fit_each", "fit_groups", "get_form", "load_results", "parse_mapping",
    "read_table", "register_form", "simulate", "validate",
]
