"""What the action screens show, without widgets: the menu's choices and one action's run (each
VM's phase and message as the engine's :class:`ActionUpdate` events and its result tell)."""

from __future__ import annotations

from collections import Counter

from rich.text import Text

from vditui.core.actions import Action, ActionPhase, ActionPlan, ActionResult, ActionTarget
from vditui.core.events import ActionUpdate
from vditui.core.exitcodes import ExitCode
from vditui.core.present import action_label

#: An entry of the action menu: the action, and whether it is the force variant.
Choice = tuple[Action, bool]

_HELP = {
    Action.SYNC: "re-read each VM's real state",
    Action.SYNC_HOST: "re-read every VM of their hosts",
    Action.START: "start the VMs",
    Action.SHUTDOWN: "guest shutdown",
    Action.REBOOT: "guest reboot",
}
_FORCE_HELP = {Action.SHUTDOWN: "power off at once",
               Action.REBOOT: "hard reset"}
_FINAL = (ActionPhase.REFUSED, ActionPhase.FAILED, ActionPhase.RESOLVED, ActionPhase.UNRESOLVED)


def choices(actions: tuple[Action, ...]) -> list[Choice]:
    """The menu for ``actions`` (those that apply): each, then its force variant if any."""
    out: list[Choice] = []
    for a in actions:
        out.append((a, False))
        if a.forceable:  # the platform's isForce
            out.append((a, True))
    return out


def choice_label(choice: Choice) -> str:
    action, force = choice
    return action_label(action, force)


def choice_help(choice: Choice) -> str:
    action, force = choice
    return _FORCE_HELP.get(action, "") if force else _HELP.get(action, "")


def plan_title(plan: ActionPlan) -> str:
    """``Send "shut down (force)" to 3 VMs on 2 hosts``."""
    n, hosts = len(plan.send), len(plan.hosts())
    vms = f"{n} VM{'' if n == 1 else 's'}"
    on = f" on {hosts} host{'' if hosts == 1 else 's'}" if hosts else ""
    return f'Send "{choice_label((plan.action, plan.force))}" to {vms}{on}'


class ActionRun:
    """One action the operator confirmed: every VM of its plan, its latest phase and message."""

    def __init__(self, plan: ActionPlan, started: float) -> None:
        self.plan, self.started = plan, started
        self.targets: dict[str, ActionTarget] = {t.key: t for t in plan.send}
        self.targets.update((t.key, t) for t, _reason in plan.refused)
        self._states: dict[str, tuple[ActionPhase | None, str]] = {
            t.key: (None, "to be sent") for t in plan.send}
        self._states.update((t.key, (ActionPhase.REFUSED, reason)) for t, reason in plan.refused)
        #: The engine's id of the action, known from its first update.
        self.action_id: str | None = None
        self.result: ActionResult | None = None
        #: Why the action could not be run at all (an ActionError, a failed worker).
        self.error = ""

    @property
    def done(self) -> bool:
        return self.result is not None or bool(self.error)

    def state(self, key: str) -> tuple[ActionPhase | None, str]:
        return self._states.get(key, (None, ""))

    def apply(self, update: ActionUpdate) -> bool:
        """Take ``update`` if it is about this run (True), else leave it (False)."""
        if self.action_id is None:
            if update.action is not self.plan.action or update.target.key not in self.targets:
                return False
            self.action_id = update.action_id
        elif update.action_id != self.action_id:
            return False
        self.targets.setdefault(update.target.key, update.target)
        self._states[update.target.key] = (update.phase, update.message)
        return True

    def finish(self, result: ActionResult) -> None:
        """The engine's final word on each VM."""
        self.result = result
        self.action_id = self.action_id or result.action_id
        for t in result.plan.send:
            self.targets.setdefault(t.key, t)
        for t, reason in result.plan.refused:
            self.targets.setdefault(t.key, t)
            self._states[t.key] = (ActionPhase.REFUSED, reason)
        for key, outcome in result.outcomes.items():
            self._states[key] = outcome

    def fail(self, message: str) -> None:
        self.error = message
        for key, (phase, _msg) in self._states.items():
            if phase not in _FINAL:
                self._states[key] = (ActionPhase.FAILED, message)

    def counts(self) -> Counter[str]:
        return Counter(p.value if p else "waiting" for p, _m in self._states.values())

    def summary(self) -> Text:
        """One line: running or done, and how many VMs are in each phase."""
        c = self.counts()
        parts = ", ".join(f"{n} {phase}" for phase, n in sorted(c.items()))
        if self.error:
            return Text(f"not done: {self.error}", style="bold red")
        if self.result is None:
            return Text(f"running… {parts}   (esc closes; the action goes on)", style="cyan")
        code = self.result.exit_code
        verdict = {ExitCode.OK: ("done: every VM agrees", "bold green"),
                   ExitCode.DIFFERS: ("done: some VMs still differ", "bold yellow")}.get(
            code, ("done: the platform refused or could not be reached", "bold red"))
        return Text(f"{verdict[0]} ({parts})", style=verdict[1])
