"""Executors run sweep jobs and hand back results as they finish; only the driver writes the store.

An executor takes the jobs lazily, one when it has room to start it: the driver claims each unit in the store
just before handing it over (see :mod:`complaw.sweep.run`), so a unit still queued is never claimed.

- ``local`` (default): one job after another in this process.
- ``ray``: every job a Ray task declaring its CPUs/GPUs, on a local Ray or an existing cluster
  (``address="ray://host:10001"`` or ``"auto"``); complaw must be installed on the workers.

    >>> for job, result in get_executor("local")(jobs, run_job):
    ...     store.put(result)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from complaw.errors import ComplawError
from complaw.registry import Registry

Executor = Callable[[Iterable[Any], Callable[[Any], Any]], Iterator[tuple[Any, Any]]]
#: Executor factories by name: ``factory(**options) -> executor``.
EXECUTORS: Registry[Callable[..., Executor]] = Registry(
    "executor", unknown="--executor {name!r}: unknown; use one of {available}")


def register_executor(name: str):
    """Decorator registering an executor factory under ``name`` (a second one of the same name raises)."""
    return EXECUTORS.register(name)


def get_executor(name: str, **options) -> Executor:
    return EXECUTORS.get(name)(**options)


@register_executor("local")
def local_executor(**_: Any) -> Executor:
    def run(jobs, fn):
        for job in jobs:
            yield job, fn(job)

    return run


@register_executor("ray")
def ray_executor(address: str | None = None, cpus_per_job: float = 1.0, gpus_per_job: float = 0.0,
                 max_in_flight: int | None = None, **_: Any) -> Executor:
    try:
        import ray
    except ImportError:
        raise ComplawError("--executor ray: Ray is not installed; pip install 'complaw[ray]'") from None

    def run(jobs, fn):
        if not ray.is_initialized():
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            kwargs: dict[str, Any] = {"ignore_reinit_error": True, "include_dashboard": False,
                                      "log_to_driver": False}
            if address:
                kwargs["address"] = address
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise ComplawError(f"--address {address}: could not connect to Ray ({str(err)[:160]})") from None
        remote = ray.remote(num_cpus=cpus_per_job, num_gpus=gpus_per_job, max_retries=0)(fn)
        limit = max_in_flight or max(1, int(ray.cluster_resources().get("CPU", 1) // max(cpus_per_job, 1e-9)))
        queue = iter(jobs)  # pulled one at a time, when a worker is free to take it
        pending: dict[Any, Any] = {}
        more = True
        try:
            while more or pending:
                while more and len(pending) < limit:
                    job = next(queue, None)
                    if job is None:
                        more = False
                        break
                    pending[remote.remote(job)] = job
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    yield pending.pop(ref), ray.get(ref)
        finally:
            for ref in pending:  # interrupted: do not leave work running on the cluster
                ray.cancel(ref, force=True)

    return run
