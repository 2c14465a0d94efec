"""The peak resident memory of this process, for the benchmarks' ``peak RSS`` lines.

``getrusage(RUSAGE_SELF).ru_maxrss`` is not this process's own peak on Linux: a child started with
``subprocess`` (fork or vfork, then exec) inherits its parent's high-water mark, so a phase started
by a parent that had just built a 2.6 GB catalog reported 2.6 GB while it never held more than
1.4 GB. ``VmHWM`` in ``/proc/self/status`` belongs to the process's own address space and starts
afresh at exec; ``ru_maxrss`` is the fallback where there is no ``/proc``.
"""

from __future__ import annotations

import resource
from pathlib import Path

STATUS = Path("/proc/self/status")


def peak_rss_mib() -> float:
    """Return this process's peak resident set size in MiB (``VmHWM``, else ``ru_maxrss``)."""
    if STATUS.exists():
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
