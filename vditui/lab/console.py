"""`vditui lab up`: serve a scenario until Ctrl-C, with a small console to inject faults."""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from typing import Any, TextIO

import libvirt

from vditui.lab.daemon import LabError
from vditui.lab.lab import Lab
from vditui.lab.scenario import Scenario

HELP = """commands (type while the lab runs):
  fault HOST pass|refuse|hang   break or mend a host's libvirt (HOST 'vdi' for the platform)
  delay MS [HOST]               add round-trip delay (all hosts and the platform, or one)
  cut HOST                      cut live connections
  kill HOST / restart HOST      kill a host's libvirtd / (kill and) start it again; a qemu
                                host's guests keep running through both
  vm NAME start|destroy|suspend|resume|crash
                                change a VM through its host's libvirt; crash kills its QEMU
                                from outside libvirt (qemu hosts only)
  chaos RATE [LAG]              change RATE VM states per second (platform follows after LAG s)
  chaos off                     stop chaos
  vdi-fault MODE|off            http500, not_json, status, slow, short_page, bad_total
  action-fault KIND [K=V ...]|off
                                the platform's action endpoints misbehave: error_list
                                (vms=NAME,UUID,...; msg=), status (code=, msg=), hang
                                (seconds=, act=1: act when released), drop_after_act (acts,
                                then drops the connection), task_fail (vms=; msg=: the task
                                fails with that errorReason); any takes actions=start,close,
                                reboot,sync,host_sync and times=N
  session NAME on|off           the VM's bound user connects / disconnects now
  action-delay SECONDS          how long the platform takes to act on libvirt (default 1)
  expire                        expire every VDI token now
  status                        what the lab serves
  quit                          stop the lab"""


def run_console(lab: Lab, line: str, out: TextIO) -> bool:
    """Apply one console command; returns False when the lab should stop."""
    words = shlex.split(line)
    if not words:
        return True
    cmd, args = words[0], words[1:]
    try:
        if cmd in ("quit", "exit"):
            return False
        if cmd == "fault" and len(args) == 2:
            lab.set_fault(args[0], args[1])
        elif cmd == "delay" and args:
            lab.set_delay(float(args[0]), args[1] if len(args) > 1 else None)
        elif cmd == "cut" and len(args) == 1:
            lab.cut(args[0])
        elif cmd == "kill" and len(args) == 1:
            lab.kill_daemon(args[0])
        elif cmd == "restart" and len(args) == 1:
            lab.restart_daemon(args[0])
        elif cmd == "vm" and len(args) == 2:
            vm = lab.vm(args[0])
            if vm.virt is None:
                raise LabError(f"VM {args[0]!r} is not on any host's libvirt in this scenario")
            print(f"{args[0]}: {lab.act(vm.virt.host, vm.uuid, args[1])}", file=out)
        elif cmd == "chaos" and args == ["off"]:
            lab.stop_chaos()
        elif cmd == "chaos" and args:
            lab.chaos(float(args[0]), float(args[1]) if len(args) > 1 else None)
        elif cmd == "vdi-fault" and len(args) == 1:
            assert lab.vdi is not None
            lab.vdi.set_fault(None if args[0] == "off" else args[0])
        elif cmd == "action-fault" and args:
            assert lab.vdi is not None
            lab.vdi.set_action_fault(None if args[0] == "off" else args[0],
                                     **_fault_params(args[1:]))
        elif cmd == "session" and len(args) == 2 and args[1] in ("on", "off"):
            assert lab.vdi is not None
            lab.vdi.set_session(lab.vm(args[0]).uuid, args[1] == "on")
        elif cmd == "action-delay" and len(args) == 1:
            assert lab.vdi is not None
            lab.vdi.action_delay = float(args[0])
        elif cmd == "expire":
            assert lab.vdi is not None
            lab.vdi.expire_tokens()
        elif cmd == "status":
            print(lab.describe(), file=out)
        else:
            print(HELP, file=out)
            return True
        print("ok", file=out)
    except (LabError, ValueError, KeyError, libvirt.libvirtError) as exc:
        print(f"error: {exc}", file=out)
    return True


def _fault_params(words: list[str]) -> dict[str, Any]:
    """``vms=a,b code=3001 act=1`` -> keyword arguments for ``set_action_fault``."""
    out: dict[str, Any] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"expected NAME=VALUE, got {word!r}")
        if key in ("vms", "actions"):
            out[key] = [v for v in value.split(",") if v]
        elif key in ("code", "times"):
            out[key] = int(value)
        elif key == "seconds":
            out[key] = float(value)
        elif key == "act":
            out[key] = value.lower() in ("1", "true", "yes")
        elif key == "msg":
            out[key] = value
        else:
            raise ValueError(f"unknown parameter {key!r}; use vms, actions, code, msg, "
                             "seconds, act or times")
    return out


def lab_up(scenario: Scenario, chaos: float = 0.0) -> int:
    """Serve ``scenario`` until Ctrl-C (or `quit`). Returns the exit code."""
    lab = Lab(scenario)
    try:
        lab.start()
    except LabError as exc:
        print(f"vditui lab: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if chaos > 0:
            lab.chaos(chaos)
        print(lab.describe())
        templates = " ".join(f"--uri-template '{t}'" for t in lab.uri_templates)
        print(f"\ntry: vditui --url {lab.vdi_url} --user {lab.username} {templates}"
              "   (password in VDITUI_PASSWORD)")
        print("Ctrl-C stops the lab; type 'help' for fault commands.", flush=True)
        if sys.stdin.isatty():
            reader = threading.Thread(target=_read_commands, args=(lab, stop), daemon=True)
            reader.start()
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        lab.stop()
        print("lab stopped", flush=True)
    return 0


def _read_commands(lab: Lab, stop: threading.Event) -> None:
    for line in sys.stdin:
        if not run_console(lab, line, sys.stdout):
            break
    stop.set()
