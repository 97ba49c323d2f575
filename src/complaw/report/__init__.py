"""The report of a compression-law study: fits, validation, decisions, speed laws, figures, failures.

    >>> from complaw.report import build_report
    >>> rep = build_report("results.csv", "reports/study", unit=DUnit("M-tokens"))
    >>> print("\\n".join(rep.summary_lines()))

Layout: :mod:`~complaw.report.analysis` computes the numbers, :mod:`~complaw.report.figures` draws them,
:mod:`~complaw.report.render` writes HTML/Markdown/JSON, :mod:`~complaw.report.build` ties them together.
Names are imported on first use, so ``import complaw.report`` (and the CLI) does not load matplotlib.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DEFAULT_FORMS": "captions", "DECISION_FORM": "captions",
    "Analysis": "analysis", "GroupAnalysis": "analysis", "SpeedAnalysis": "analysis",
    "NUnit": "analysis", "Report": "build", "build_report": "build", "sweep_report": "build",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"complaw.report.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'complaw.report' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
