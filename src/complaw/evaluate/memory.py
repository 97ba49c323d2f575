"""Peak memory of a stretch of work (the process's peak RSS and, on CUDA, the most memory torch allocated),
and keeping the allocator from holding on to freed memory.

    >>> with PeakMemory(device) as mem:
    ...     ...  # load, compress, evaluate
    ...     peak = mem.read()
    >>> peak.rss_bytes, peak.cuda_max_allocated_bytes

The peak RSS is exact when the stretch set a new high for the process (the kernel's ``ru_maxrss``
rose while it ran: then that high is the stretch's peak). When an earlier stretch of the same process had
gone higher (a later unit of a sweep), ``ru_maxrss`` cannot say how high this one went, and the peak is the
highest RSS a background thread sampled every few milliseconds — a lower bound that misses only spikes
shorter than the interval. ``rss_exact`` says which one a reading is. (A process exec'd straight after a
fork starts with its parent's ``ru_maxrss``; a reading then counts as exact only once it went above that.)

:func:`limit_allocator_caching` and :func:`release_memory` are why a run's RSS stays near its live tensors:
glibc serves tensors of up to 32 MB from its heap once a freed one raised its mmap threshold, and a heap
only shrinks from the top, so one RFT step of SmolLM2-135M (thousands of 1-3 MB activations) left 3.7 GB
resident after the step had freed them (see BENCHMARKS.md, #18).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import resource
import sys
import threading
from dataclasses import asdict, dataclass

import torch


def _page_size() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 4096


_PAGE = _page_size()


def current_rss_bytes() -> int | None:
    """This process's resident set size now (None where it cannot be read)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # psutil missing or refused: no sampling, ru_maxrss only
        return None


def max_rss_bytes() -> int:
    """The process's peak RSS so far (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(value) if sys.platform == "darwin" else int(value) * 1024


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD_BYTES = 1 << 20
_libc_cache: list = []


def _libc():
    """glibc, or None (macOS, musl: nothing to tune)."""
    if not _libc_cache:
        lib = None
        if sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                lib.mallopt, lib.malloc_trim  # noqa: B018 — glibc has both; musl has neither
            except (OSError, AttributeError):
                lib = None
        _libc_cache.append(lib)
    return _libc_cache[0]


def limit_allocator_caching(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Serve every allocation of ``threshold_bytes`` or more by its own mmap, returned to the OS when freed.

    Fixing glibc's mmap threshold (1 MiB) stops it from rising to 32 MB as big tensors are freed, so that
    activations no longer fragment the heap. Process-wide (what ``MALLOC_MMAP_THRESHOLD_`` does from the
    environment); a no-op without glibc or when that variable is set. Returns whether it was applied.
    """
    lib = _libc()
    if lib is None or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    return bool(lib.mallopt(_M_MMAP_THRESHOLD, int(threshold_bytes)))


def release_memory(device: torch.device | str | None = None) -> None:
    """Collect garbage and hand freed memory back: glibc's heap tops (malloc_trim), torch's CUDA cache."""
    gc.collect()
    lib = _libc()
    if lib is not None:
        lib.malloc_trim(0)
    if device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass(frozen=True)
class MemoryPeak:
    rss_bytes: int  # peak resident set size of the process during the stretch
    rss_exact: bool  # True: the kernel's own peak; False: the highest sampled value (a lower bound)
    rss_start_bytes: int | None  # RSS when the stretch began (imports, tokenizer, data already in)
    cuda_max_allocated_bytes: int | None  # torch.cuda.max_memory_allocated over the stretch; None off CUDA

    def to_dict(self) -> dict:
        return asdict(self)


class PeakMemory:
    """Tracks the peak memory from ``__enter__`` on; :meth:`read` can be called any number of times."""

    def __init__(self, device: torch.device | str | None = None, interval_s: float = 0.005):
        dev = torch.device(device) if device is not None else torch.device("cpu")
        self.cuda = dev if dev.type == "cuda" and torch.cuda.is_available() else None
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sampled = 0

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            rss = current_rss_bytes()
            if rss is not None and rss > self._sampled:
                self._sampled = rss

    def __enter__(self) -> PeakMemory:
        self._start_max = max_rss_bytes()
        self.start_rss = current_rss_bytes()
        self._sampled = self.start_rss or 0
        if self.cuda is not None:
            torch.cuda.reset_peak_memory_stats(self.cuda)
        if self.start_rss is not None:
            self._thread = threading.Thread(target=self._sample, name="complaw-peak-memory", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> bool:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return False

    def read(self) -> MemoryPeak:
        """The peak since ``__enter__``."""
        now = current_rss_bytes() or 0
        top = max_rss_bytes()
        exact = top > self._start_max  # a new high for the process was set inside the stretch
        rss = max(top, now) if exact else max(self._sampled, now)
        cuda = int(torch.cuda.max_memory_allocated(self.cuda)) if self.cuda is not None else None
        return MemoryPeak(int(rss), exact, self.start_rss, cuda)
