"""``python -m benchmarks.config_load [N ...]``: how long loading a config of N acknowledgement
rules takes (as ``baseline`` writes them on a large site), 1,000 and 10,000 by default. Prints
one line per size, wall and CPU time; the target is under 1 s for 10,000 rules. Not part of
``make bench``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from vditui.config.load import parse_config


def rules(n: int) -> str:
    """A config with ``n`` acknowledgement rules, one per VM."""
    out = ['default_profile = "prod"\n', '[profiles.prod]\nurl = "http://127.0.0.1:8088"\n']
    out += [f'[[profiles.prod.ack]]\nvm = "vm-{i:05d}"\nhost = "hv-{i % 50:02d}"\n'
            f'kind = "state"\nreason = "baseline {i}"\n' for i in range(n)]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    for n in [int(a) for a in argv] or [1_000, 10_000]:
        best = cpu = float("inf")
        for rep in range(3):
            # A text of its own each time: nothing cached from the run before counts.
            text = rules(n) + f"# run {rep}\n"
            t0, c0 = time.perf_counter(), time.process_time()
            config = parse_config(text, Path("/bench/config.toml"))
            best = min(best, time.perf_counter() - t0)
            cpu = min(cpu, time.process_time() - c0)
        assert len(config.profiles["prod"].ack) == n
        print(f"config load: {n:>6,} rules ({len(text) / 1e6:.1f} MB): {best:.3f} s wall, "
              f"{cpu:.3f} s CPU (best of 3; the CPU figure holds on a loaded machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
