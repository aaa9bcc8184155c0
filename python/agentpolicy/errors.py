"""The exceptions agentpolicy raises. Every bad input is one of these (or an ``OSError``
for a file that cannot be read), never a crash of the interpreter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

__all__ = [
    "AgentPolicyError",
    "Diagnostic",
    "PolicyCompileError",
    "TableError",
    "InvalidArgument",
    "UnknownName",
    "SessionError",
    "EscalationError",
    "AuditError",
    "EngineClosed",
    "EngineFault",
    "PolicyDenied",
    "EscalationPending",
]


class AgentPolicyError(Exception):
    """The base class of every agentpolicy exception."""


@dataclass(frozen=True)
class Diagnostic:
    """One compiler diagnostic: a stable code (``AP0010``), its severity, the message,
    where it points (1-based line and column, in characters) and the help line.
    ``agentpolicy explain CODE`` prints the code's page."""

    code: str
    severity: str
    message: str
    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    label: str = ""
    help: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}[{self.code}]: {self.message}"


class PolicyCompileError(AgentPolicyError):
    """The policy has errors: ``diagnostics`` lists every diagnostic (errors and
    warnings) with its code and position; ``rendered`` is the CLI's snippet output."""

    def __init__(self, message: str, *, diagnostics: Sequence[Any] = (), rendered: str = ""):
        super().__init__(message)
        self.diagnostics: list[Diagnostic] = [
            d if isinstance(d, Diagnostic) else Diagnostic(**d) for d in (diagnostics or [])
        ]
        self.rendered = rendered

    @property
    def codes(self) -> list[str]:
        """The codes of the errors, in order (warnings left out)."""
        return [d.code for d in self.diagnostics if d.severity == "error"]


class TableError(AgentPolicyError):
    """Bytes that are not a valid decision table (wrong magic, version or checksum, an
    id out of range)."""


class InvalidArgument(AgentPolicyError, ValueError, TypeError):
    """A value the engine cannot take: a wrong type, money that is not exact, a
    parameter the tool does not have. ``argument`` names the argument. When the engine
    already decided (and audited) the call as a deny, ``decision`` holds it."""

    def __init__(self, message: str, *, argument: Optional[str] = None, decision: Any = None):
        super().__init__(message)
        self.argument = argument
        self.decision = decision


class UnknownName(AgentPolicyError, ValueError):
    """An agent or tool the policy does not declare. ``kind`` is ``"agent"`` or
    ``"tool"``; ``name`` is the name given."""

    def __init__(self, message: str, *, kind: str = "", name: str = ""):
        super().__init__(message)
        self.kind = kind
        self.name = name


class SessionError(AgentPolicyError):
    """The session is closed or unknown."""


class EscalationError(AgentPolicyError):
    """No such pending escalation (never raised, or already resolved), or no such call."""


class AuditError(AgentPolicyError):
    """The audit log cannot be opened, read or restored from."""


class EngineClosed(AgentPolicyError):
    """The engine was closed with ``Engine.close()``."""


class EngineFault(AgentPolicyError):
    """A fault inside the engine (a poisoned lock, a failed audit write). Decisions are
    denied while it lasts; this is raised only by operations that are not decisions."""


class PolicyDenied(AgentPolicyError):
    """Raised by ``guard`` when the policy denies a call (the tool was not run).
    ``decision`` is the ``Decision``; ``resolution`` the ``Resolution`` when a human
    or a timeout turned an escalation into a deny."""

    def __init__(self, decision: Any, resolution: Any = None):
        why = resolution.why if resolution is not None else decision.explanation
        super().__init__(f"{decision.tool}: {why}")
        self.decision = decision
        self.resolution = resolution


class EscalationPending(AgentPolicyError):
    """Raised by ``guard`` when a call waits for a human and no resolver answered: the
    tool was not run. ``escalation`` is its id (``"s3:2"``) for ``Engine.approve``,
    ``reject`` and ``wait``."""

    def __init__(self, decision: Any):
        super().__init__(
            f"{decision.tool}: waiting for a human ({', '.join(decision.routes) or 'no route'}): "
            f"escalation {decision.escalation}; {decision.explanation}"
        )
        self.decision = decision
        self.escalation = decision.escalation
