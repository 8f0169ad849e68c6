"""vditui's exit codes, the one enum every command returns (what each means for each command
is said once, in :data:`vditui.commands.registry.COMMANDS`, and shown in the README's table).

In the core because :mod:`vditui.core.act_rules` judges an action's outcome by them."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """A command's status, as the shell sees it."""

    OK = 0
    """Done, and everything agrees (or nothing was asked for)."""
    DIFFERS = 1
    """Done, and something differs: drift that counts, or VMs an action did not bring into
    agreement."""
    FAILED = 2
    """Not done, or done on a part only: a host or the platform unreachable, bad input or
    settings, refused (read-only, no terminal to ask on), a file that could not be read or
    written. Also argparse's status for a bad command line."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (SIGINT), SIGTERM or SIGHUP: 128 + SIGINT, as shells report it."""
    PIPE_CLOSED = 141
    """Its standard output was closed before all was written (``| head``): 128 + SIGPIPE, as
    a shell reports a process SIGPIPE ended. Output the reader took in full leaves the
    command's own code."""
