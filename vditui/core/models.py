"""The engine's data: what the platform says, what libvirt says, and where they differ.

Everything here is a frozen dataclass or an enum, so snapshots can be shared between threads and
the UI without copying. Keys are stable: a VM row is keyed by its libvirt UUID when it has one
(else by the platform's id), a host by the platform's host id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from vditui.core.uris import redact_uri


class HostStatus(IntEnum):
    """HostVO.status as the platform reports it."""

    MAINTENANCE = 0
    ENABLED = 1
    SHUTDOWN = 2
    OFFLINE = 3


class VdiVmStatus(IntEnum):
    """DomainVO.status as the platform reports it."""

    OFF = 0
    RUNNING = 1
    SUSPENDED = 2
    BUSY = 5  # an operation is in progress
    UPGRADING = 6


def host_status_label(code: int | None) -> str:
    try:
        return HostStatus(code).name.lower() if code is not None else "unknown"
    except ValueError:
        return f"status {code}"


def vdi_status_label(code: int | None) -> str:
    try:
        return VdiVmStatus(code).name.lower() if code is not None else "unknown"
    except ValueError:
        return f"status {code}"


class VirtState(StrEnum):
    """libvirt's virDomainState, by name (VIR_DOMAIN_NOSTATE = 0 ... PMSUSPENDED = 7)."""

    NOSTATE = "nostate"
    RUNNING = "running"
    BLOCKED = "blocked"
    PAUSED = "paused"
    SHUTDOWN = "shutting-down"
    SHUTOFF = "shutoff"
    CRASHED = "crashed"
    PMSUSPENDED = "pmsuspended"

    @classmethod
    def from_code(cls, code: int) -> VirtState:
        order = list(cls)
        return order[code] if 0 <= code < len(order) else cls.NOSTATE


class ConnState(StrEnum):
    """A libvirt session's connection state, as shown to the operator."""

    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


# --------------------------------------------------------------------------- the platform's view


class PoolStatus(IntEnum):
    """DesktopPoolVO.status as the platform reports it."""

    IDLE = 0
    SWITCHING_TEMPLATE = 1  # its desktops are being rebuilt from a new template
    ARCHIVED = 2


@dataclass(frozen=True, slots=True)
class DesktopPool:
    """A desktop pool (DesktopPoolVO): ``amount`` desktops, ``used_amount`` of them in use."""

    id: str
    name: str
    amount: int | None = None
    used_amount: int | None = None
    status: int | None = None
    cur_model_id: str = ""

    @property
    def switching(self) -> bool:
        """True while the pool switches template (its desktops are busy being rebuilt)."""
        return self.status == PoolStatus.SWITCHING_TEMPLATE


@dataclass(frozen=True, slots=True)
class VdiUser:
    """A platform user (UserListVo), reduced at the source to what may be shown: the login and
    the display name. National ID, phone and mail are never read into vditui."""

    id: str
    login: str
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class PlatformAlarm:
    """One of the platform's live alarms (AlarmVO). ``at`` is epoch seconds (None: unknown)."""

    id: str
    level: str
    module: str
    content: str
    host_ip: str = ""
    at: float | None = None


@dataclass(frozen=True, slots=True)
class VdiHost:
    """A hypervisor host as the platform records it (HostVO)."""

    id: str
    name: str
    ip: str
    status: int | None
    pool_id: str = ""
    pool_name: str = ""
    cpu_model: str = ""
    cpus: int | None = None
    memory_gb: float | None = None
    running_count: int | None = None
    physical_memory_gb: float | None = None
    domain_limit: int | None = None


@dataclass(frozen=True, slots=True)
class VdiVm:
    """A VM as the platform records it (DomainVO). ``memory_mb`` is MB (= MiB, as libvirt's)."""

    id: str
    name: str
    status: int | None
    vcpu: int | None
    memory_mb: int | None
    host_id: str
    host_name: str = ""
    desktop_pool_id: str = ""
    ip: str = ""
    template: bool = False  # isModel = 1, or listed by GET /ocloud/v1/model
    recycled: bool = False  # isRecycle = 1, or listed by GET /ocloud/v1/recycle
    freeze: int = 0  # restore point: 0 none, else reset to it (1 every boot, 2 daily, ...)
    mother_id: str = ""  # a linked clone's template
    mother_name: str = ""
    user_id: str = ""  # the bound user, if any
    user_login: str = ""  # the bound user's login and display name (from GET /ocloud/v1/user)
    user_name: str = ""
    connected: bool | None = None  # a user's client is connected now (isConnected)
    connect_time: float | None = None  # epoch seconds
    disconnect_time: float | None = None

    @property
    def frozen(self) -> bool:
        """True for a restore-point desktop: every reset returns its disk to the restore point."""
        return self.freeze != 0


@dataclass(frozen=True, slots=True)
class VdiInventory:
    hosts: tuple[VdiHost, ...]
    vms: tuple[VdiVm, ...]
    pools: tuple[DesktopPool, ...] = ()
    fetched_at: float = 0.0
    requests: int = 0
    users: tuple[VdiUser, ...] = ()
    alarms: tuple[PlatformAlarm, ...] = ()

    def host_names(self) -> dict[str, str]:
        """Host id -> name, as the platform has them."""
        return {h.id: h.name for h in self.hosts}


# --------------------------------------------------------------------------- libvirt's view


@dataclass(frozen=True, slots=True)
class Domain:
    """A libvirt domain. ``memory_kib`` is libvirt's maximum memory in KiB."""

    uuid: str
    name: str
    state: VirtState
    vcpu: int | None = None
    memory_kib: int | None = None


class VirtErrorKind(StrEnum):
    """Why a libvirt connection or call failed, classified for a hint."""

    REFUSED = "refused"
    TIMEOUT = "timeout"
    NAME_UNRESOLVED = "name-unresolved"
    SSH_HOST_KEY = "ssh-host-key"
    SSH_AUTH = "ssh-auth"
    # The TLS values fit the reconnect screen's result column (14 characters at most).
    TLS_CERT = "tls-cert"  # certificates missing or unreadable, or a TLS failure not below
    TLS_UNKNOWN_CA = "tls-unknown-ca"  # the server's certificate is from another CA
    TLS_NAME_MISMATCH = "tls-wrong-name"  # the server's certificate does not name the host
    TLS_CLIENT_MISSING = "tls-no-client"  # no client certificate, and the server wants one
    TLS_CLIENT_REFUSED = "tls-bad-client"  # the client certificate was refused
    AUTH_REQUIRED = "auth-required"
    INVALID_URI = "invalid-uri"
    CONNECTION_LOST = "connection-lost"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class VirtError:
    """A libvirt failure with everything needed to act on it. Never holds a secret."""

    kind: VirtErrorKind
    uri: str
    message: str  # libvirt's raw message (or ours, for timeouts)
    code: int | None = None  # libvirt's error code (virErrorNumber)
    domain: int | None = None  # libvirt's error domain (virErrorDomain)
    hint: str = ""

    def __post_init__(self) -> None:
        # libvirt's messages quote the URI: whatever shows or stores an error gets it redacted.
        for name in ("uri", "message", "hint"):
            object.__setattr__(self, name, redact_uri(getattr(self, name)))

    def __str__(self) -> str:
        return f"{self.uri}: {self.kind.value}: {self.message}"


@dataclass(frozen=True, slots=True)
class HostView:
    """One host's libvirt side at a moment. ``domains`` is None when it was never read."""

    host_id: str
    uri: str
    state: ConnState
    domains: tuple[Domain, ...] | None = None
    error: VirtError | None = None
    read_at: float = 0.0
    round_trips: int = 0
    libvirt_version: str = ""
    hostname: str = ""
    node_cpus: int | None = None  # libvirt's node info: CPUs and memory (KiB)
    node_memory_kib: int | None = None

    def __post_init__(self) -> None:
        # For showing and storing only (the session keeps the URI it connects with).
        object.__setattr__(self, "uri", redact_uri(self.uri))


# --------------------------------------------------------------------------- differences


class DriftKind(StrEnum):
    ONLY_IN_VDI = "only_in_vdi"
    ONLY_IN_LIBVIRT = "only_in_libvirt"
    STATE = "state"
    VCPU = "vcpu"
    MEMORY = "memory"
    PLACEMENT = "placement"
    DUPLICATE = "duplicate"
    HOST_UNREACHABLE = "unreachable"
    HOST_OFFLINE_BUT_REACHABLE = "offline_but_reachable"
    HOST_RUNNING_COUNT = "running_count"


class Severity(IntEnum):
    INFO = 0
    WARNING = 1
    CRITICAL = 2


@dataclass(frozen=True, slots=True)
class Drift:
    """One difference between the platform and libvirt, with a sentence an operator can read.

    ``key`` is stable across refreshes (the VM row key or the host id), so the same drift seen
    twice is recognised as the same one.
    """

    kind: DriftKind
    severity: Severity
    key: str
    subject: str  # the VM's or host's name
    host_id: str
    message: str
    vdi_value: str = ""
    virt_value: str = ""

    @property
    def ident(self) -> tuple[str, str]:
        return (self.key, self.kind.value)


@dataclass(frozen=True, slots=True)
class VmRow:
    """A VM as compared: either side may be missing. ``checked`` is False when its host's
    libvirt could not be read, so no verdict is possible."""

    key: str
    name: str
    vdi: VdiVm | None
    virt: Domain | None
    virt_host_id: str | None
    drifts: tuple[Drift, ...] = ()
    checked: bool = True

    @property
    def host_id(self) -> str:
        if self.vdi is not None:
            return self.vdi.host_id
        return self.virt_host_id or ""


@dataclass(frozen=True, slots=True)
class HostRow:
    host: VdiHost
    view: HostView | None
    drifts: tuple[Drift, ...] = ()
    vdi_vms: int = 0
    virt_vms: int | None = None
    #: The platform's live alarms about this host (matched by its IP).
    alarms: tuple[PlatformAlarm, ...] = ()


@dataclass(frozen=True, slots=True)
class Comparison:
    vms: tuple[VmRow, ...]
    hosts: tuple[HostRow, ...]
    drifts: tuple[Drift, ...] = field(default=())
    #: The platform's live alarms (all of them; hosts carry their own too) and desktop pools,
    #: as read with the inventory this comparison was made from.
    alarms: tuple[PlatformAlarm, ...] = ()
    pools: tuple[DesktopPool, ...] = ()

    def host_names(self) -> dict[str, str]:
        """Host id -> name, for every host of the comparison (the one map every face and
        report uses to name a host)."""
        return {h.host.id: h.host.name for h in self.hosts}
