"""vditui's benchmarks: cold inventory, scaling, live latency, against the lab's real backends.

Run with ``python -m benchmarks`` (see ``benchmarks/README.md``). The lab (libvirtd processes,
fault/latency proxies, simulated VDI server) runs in the parent process; everything measured runs
in a child process (``python -m benchmarks.worker``), so its CPU time and peak memory are
vditui's own and not the lab's.

Not part of the test suite: nothing here passes or fails a build.
"""
