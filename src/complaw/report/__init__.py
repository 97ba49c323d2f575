"""The report of a compression-law study: fits, validation, decisions, speed laws, figures, failures.

    >>> from complaw.report import build_report
    >>> rep = build_report("results.csv", "reports/study", unit=DUnit("M-tokens"))
    >>> print("\\n".join(rep.summary_lines()))

Layout: :mod:`~complaw.report.analysis` computes the numbers, :mod:`~complaw.report.figures` draws them,
:mod:`~complaw.report.render` writes HTML/Markdown/JSON, :mod:`~complaw.report.build` ties them together.
"""

from complaw.report.analysis import DEFAULT_FORMS, Analysis, GroupAnalysis, SpeedAnalysis
from complaw.report.build import Report, build_report

__all__ = ["DEFAULT_FORMS", "Analysis", "GroupAnalysis", "Report", "SpeedAnalysis", "build_report"]
