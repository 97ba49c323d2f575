"""Sweeps: the grid spec, the SQLite results store, executors (local, Ray) and the runner."""

from complaw.sweep.run import SweepResult, run_sweep
from complaw.sweep.spec import SweepSpec, Unit, load_spec
from complaw.sweep.store import ResultStore, law_rows_of

__all__ = ["ResultStore", "SweepResult", "SweepSpec", "Unit", "law_rows_of", "load_spec", "run_sweep"]
