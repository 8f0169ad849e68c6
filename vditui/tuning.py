"""CPython's cyclic garbage collector, tuned for a long-running process that must answer fast.

Measured (benchmarks/README.md) with 5,000 VMs under 200 state changes a second:

* the default thresholds (700, 10, 10) ran full collections over thousands of long-lived
  objects several times a second: 9 s of a 20 s storm;
* (50,000, 50, 1000) removed those, but each young-generation pass then walked up to ~100,000
  objects (mostly Textual's rendered strips): 55-70 ms of CPU, the longest stall on the loop;
* (15,000, 50, 1000) shortened those passes but ran a middle-generation pass every 50 of them,
  91 ms at a time;
* (20,000, 1000, 1000), kept: young passes of at most ~30 ms, and middle-generation passes
  only every 1,000 young ones (minutes apart even under a storm). Objects that outlive the
  first full read are frozen out of the collector's way (``gc.freeze``, by the TUI).
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (20_000, 1000, 1000)


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
