"""Real hypervisors in the lab: a privileged ``libvirtd`` with the QEMU driver per qemu host.

Several privileged daemons cannot share the system's libvirt directories, so each runs in a
mount namespace of its own (``unshare -m --propagation private``) with private bind mounts over
``/run/libvirt``, ``/var/lib/libvirt``, ``/var/cache/libvirt``, ``/var/log/libvirt`` and
``/etc/libvirt`` (a ``qemu.conf`` of the lab's own, next to a copy of ``libvirt.conf``). The
``qemu.conf`` turns off what needs the host's cooperation (security drivers, cgroups,
namespaces, owner changes, virtlogd), so a daemon needs nothing but root, QEMU and the user
``libvirt-qemu`` with the groups ``libvirt-qemu`` and ``kvm`` (``scripts/setup.sh`` makes them;
the QEMU driver refuses to start without them).

``libvirtd.conf`` is :class:`LibvirtDaemon`'s, unchanged: a qemu host listens, and can be
reached, exactly as a test-driver host is; only the URI's driver and path differ
(``qemu+tcp://HOST/system``).

Guests are diskless: they boot to firmware and idle there at a few % CPU and ~40 MB RSS (KVM),
so a running guest is cheap and a shut-off one costs nothing. Their QEMU processes do not die
with the daemon (so that a daemon can be restarted under running guests, as on a real host);
:meth:`QemuDaemon.stop` kills them. A lab that died without stopping (SIGKILL) leaves them
running: the lab's directory names its owner's pid (:data:`OWNER_FILE`), and the next lab to
start a qemu host kills the guests of every lab whose owner is gone (:func:`reap_orphans`).
"""

from __future__ import annotations

import contextlib
import getpass
import glob
import grp
import logging
import os
import pwd
import shlex
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from xml.sax.saxutils import escape

from vditui.lab.daemon import LibvirtDaemon
from vditui.lab.scenario import VmSpec

log = logging.getLogger("vditui.lab.qemu")
QEMU_BINARY = "qemu-system-x86_64"
#: In a lab's directory: the pid of the process that owns the lab (and so its guests).
OWNER_FILE = "owner.pid"
_reaped = threading.Event()  # once per process: orphans do not appear while we run
#: System directory -> name of the private directory bound over it, under the daemon's dir.
PRIVATE_DIRS = {"/run/libvirt": "run", "/var/lib/libvirt": "lib",
                "/var/cache/libvirt": "cache", "/var/log/libvirt": "log", "/etc/libvirt": "etc"}
QEMU_CONF = """\
# Written by vditui's lab: a privileged daemon that shares nothing with the host's own libvirt.
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
remember_owner = 0
stdio_handler = "file"
"""


def _driver_module() -> str | None:
    found = glob.glob("/usr/lib*/*/libvirt/connection-driver/libvirt_driver_qemu.so") + glob.glob(
        "/usr/lib*/libvirt/connection-driver/libvirt_driver_qemu.so")
    return found[0] if found else None


def unavailable() -> str | None:
    """Why this machine cannot serve qemu hosts, in one line with what to do; None if it can."""
    if os.geteuid() != 0:
        return (f"not root (running as {getpass.getuser()}): a qemu host needs a privileged "
                "libvirtd; run the lab as root")
    for tool in (QEMU_BINARY, "unshare", "mount"):
        if shutil.which(tool) is None:
            return (f"{tool} not found: install qemu-system-x86 and util-linux "
                    "(`scripts/setup.sh` does)")
    if _driver_module() is None:
        return ("libvirt's QEMU driver (libvirt_driver_qemu.so) is not installed: install "
                "libvirt-daemon-driver-qemu (`scripts/setup.sh` does)")
    try:
        pwd.getpwnam("libvirt-qemu")
        for group in ("libvirt-qemu", "kvm"):
            grp.getgrnam(group)
    except KeyError as exc:
        return (f"{exc.args[0]} is missing (libvirt's QEMU driver refuses to start without the "
                "user libvirt-qemu and the groups libvirt-qemu and kvm): run `scripts/setup.sh`")
    return None


def domain_type() -> str:
    """``kvm`` when ``/dev/kvm`` can be opened, else ``qemu`` (TCG: the same guests, slower)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return "qemu"
    os.close(fd)
    return "kvm"


def _qemu_pids(run_dir: Path) -> dict[str, int]:
    """Guest name -> QEMU pid, from the pid files libvirtd keeps in ``run_dir``."""
    out = {}
    for f in run_dir.glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(f.read_text().strip())
            # A stale file may name a pid the kernel has since given to someone else.
            if Path(f"/proc/{pid}/comm").read_text().startswith("qemu"):
                out[f.stem] = pid
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def reap_orphans(tmp: Path | None = None) -> list[str]:
    """Kill the QEMU guests of every lab in ``tmp`` (the system's temporary directory) whose
    owning process is gone, and remove that lab's directory; return the guests' names.

    A pid reused by another process since keeps its lab's guests alive: the safe side."""
    reaped: list[str] = []
    for owner in Path(tmp or tempfile.gettempdir()).glob(f"vditui-lab-*/{OWNER_FILE}"):
        try:
            pid = int(owner.read_text().strip())
        except (OSError, ValueError):
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        for run_dir in owner.parent.glob("*/system/run/qemu"):
            for name, qpid in _qemu_pids(run_dir).items():
                with contextlib.suppress(OSError):
                    os.kill(qpid, signal.SIGKILL)
                    reaped.append(name)
        shutil.rmtree(owner.parent, ignore_errors=True)
    return reaped


def guest_xml(vm: VmSpec, kind: str) -> str:
    """A diskless guest with the scenario's vCPUs (current and maximum) and memory (size and
    balloon target); ``kind`` is ``kvm`` or ``qemu``."""
    v = vm.virt
    assert v is not None
    cur_kib = (v.current_memory_mb or v.memory_mb) * 1024
    emulator = shutil.which(QEMU_BINARY) or f"/usr/bin/{QEMU_BINARY}"
    return (f"<domain type='{kind}'><name>{escape(vm.name)}</name><uuid>{vm.uuid}</uuid>"
            f"<memory unit='KiB'>{v.memory_mb * 1024}</memory>"
            f"<currentMemory unit='KiB'>{cur_kib}</currentMemory>"
            f"<vcpu placement='static' current='{v.vcpu}'>{v.vcpu_max or v.vcpu}</vcpu>"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
            "<on_crash>destroy</on_crash>"
            f"<devices><emulator>{escape(emulator)}</emulator>"
            "<memballoon model='virtio'/></devices></domain>")


class QemuDaemon(LibvirtDaemon):
    """A privileged libvirtd with only the QEMU driver loaded, in its own mount namespace."""

    driver = "qemu"
    uri_path = "/system"

    @property
    def private(self) -> Path:
        return self.dir / "system"

    def _prepare(self) -> None:
        for sub in PRIVATE_DIRS.values():
            (self.private / sub).mkdir(parents=True, exist_ok=True)
        etc = self.private / "etc"
        with contextlib.suppress(OSError):
            shutil.copy2("/etc/libvirt/libvirt.conf", etc / "libvirt.conf")
        (etc / "qemu.conf").write_text(QEMU_CONF, encoding="utf-8")
        drivers = self.dir / "drivers"
        drivers.mkdir(parents=True, exist_ok=True)
        link = drivers / "libvirt_driver_qemu.so"
        module = _driver_module()
        if module and not link.exists():
            link.symlink_to(module)  # only QEMU: no network, storage or nwfilter drivers

    def _command(self, binary: str, conf: Path) -> list[str]:
        self._prepare()
        lab_dir = self.dir.parent
        (lab_dir / OWNER_FILE).write_text(str(os.getpid()), encoding="utf-8")
        if not _reaped.is_set():
            _reaped.set()
            if names := reap_orphans():
                log.warning("lab: killed %d QEMU guests left running by a lab that died "
                            "without stopping: %s", len(names), ", ".join(sorted(names)))
        mounts = []
        for target, sub in PRIVATE_DIRS.items():
            os.makedirs(target, exist_ok=True)  # an empty mount point on the real system
            mounts.append(f"mount --bind {shlex.quote(str(self.private / sub))} {target}")
        script = " && ".join([*mounts, "exec " + shlex.join(super()._command(binary, conf))])
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script]

    def guest_pids(self) -> dict[str, int]:
        """Guest name -> QEMU pid, for every guest the daemon has running."""
        return _qemu_pids(self.private / "run" / "qemu")

    def kill_guest(self, name: str) -> None:
        """Kill one guest's QEMU from outside libvirt (libvirt then records a crash)."""
        pid = self.guest_pids().get(name)
        if pid is None:
            raise ProcessLookupError(f"{self.name}: no running QEMU for guest {name!r}")
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        super().stop()
        for pid in self.guest_pids().values():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
