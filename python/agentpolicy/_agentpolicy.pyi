"""Type stubs of the extension module (the Rust engine); the package `agentpolicy`
re-exports these names."""

from __future__ import annotations

import datetime
import os
from decimal import Decimal
from typing import Any, Literal, Mapping, Optional, Sequence, Tuple, TypedDict, Union

__version__: str

PathLike = Union[str, "os.PathLike[str]"]
Money = Union[Decimal, int, str]
"""`Decimal("25000")`, `25000` (dollars) or `"$25,000"`; never a float."""
Number = Union[int, float, Decimal, str]
"""`0.85`, `Decimal("0.85")`, `"0.85"` or `"85%"`: at most 6 decimals, never rounded."""
Duration = Union[datetime.timedelta, int, str]
"""`timedelta(minutes=15)`, `900_000` (milliseconds) or `"15m"`."""
ArgValue = Union[Money, Number, Duration, bool, str, Sequence[str]]
Target = Union[str, Tuple[str, Mapping[str, str]], Mapping[str, Any]]
"""`"orders"`, `("orders", {"customer": "C-1"})` or `{"resource": "orders", "keys": {...}}`
(`"sink"` for writes)."""
Outcome = Literal["allow", "escalate", "deny"]
Reason = Literal[
    "rule", "no_rule", "flow", "limit", "suspended", "not_granted", "fault", "request", "session", "internal"
]

def compile(path: PathLike) -> bytes:
    """Compile the policy at `path` (a file or folder) to its binary decision table.
    Raises `PolicyCompileError` with the diagnostics, or `OSError`."""

class ManualClock:
    """A clock that moves only when told to (milliseconds since the Unix epoch)."""

    def __init__(self, start_ms: int = 0) -> None: ...
    def now_ms(self) -> int: ...
    def advance(self, ms: int) -> None: ...
    def set(self, ms: int) -> None: ...

class Decision:
    """The engine's answer to one call."""

    @property
    def outcome(self) -> Outcome:
        """What the caller must do (in shadow mode always "allow")."""
    @property
    def policy_outcome(self) -> Outcome:
        """What the policy decided (differs from `outcome` only in shadow mode)."""
    @property
    def allowed(self) -> bool: ...
    @property
    def denied(self) -> bool: ...
    @property
    def escalated(self) -> bool: ...
    @property
    def reason(self) -> Reason: ...
    @property
    def rule(self) -> Optional[str]:
        """The deciding rule's id, e.g. "billing/escalate/transfer_from_trust#1"."""
    @property
    def rule_location(self) -> Optional[Tuple[str, int, int]]:
        """(file, line, column) of the deciding rule, 1-based."""
    @property
    def routes(self) -> list[str]: ...
    @property
    def missing(self) -> Optional[str]:
        """The value whose absence made the deciding rule match."""
    @property
    def explanation(self) -> str: ...
    @property
    def escalation(self) -> Optional[str]:
        """The pending escalation's id ("s3:2") when the outcome is "escalate"."""
    @property
    def call(self) -> Optional[str]:
        """The call's id ("s3:2") for `report` and `record_human`."""
    @property
    def shadow(self) -> bool: ...
    @property
    def tool(self) -> str: ...
    @property
    def agent(self) -> str: ...
    @property
    def table_hash(self) -> str: ...
    @property
    def audit_seq(self) -> Optional[int]: ...
    def __bool__(self) -> bool: ...

class Escalation:
    """A call waiting for a human."""

    id: str
    session: str
    agent: str
    tool: str
    rule: Optional[str]
    routes: list[str]
    notify: list[str]
    raised_ms: int
    deadline_ms: Optional[int]
    timeout_outcome: Literal["allow", "deny"]

class Resolution:
    """How an escalation ended."""

    escalation: Escalation
    resolution: Literal["approve", "reject", "timeout"]
    outcome: Literal["allow", "deny"]
    why: str
    @property
    def allowed(self) -> bool: ...

class LimitUsage(TypedDict):
    limit: str
    used: int

class SessionState(TypedDict):
    id: str
    name: str
    agent: str
    task: int
    calls: int
    tier: Optional[str]
    tainted: bool
    bound: dict[str, str]
    limits: list[LimitUsage]
    pending: list[str]
    closed: bool
    broken: Optional[str]
    context: Optional[str]

EscalationRef = Union[str, Decision, Escalation]

class Session:
    """One agent's run; `with` closes it."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def agent(self) -> str: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def tainted(self) -> bool: ...
    def decide(
        self,
        tool: str,
        args: Optional[Mapping[str, ArgValue]] = None,
        *,
        confidence: Optional[Number] = None,
        untrusted: Optional[Sequence[str]] = None,
        read: Optional[Target] = None,
        write: Optional[Target] = None,
        reasoning: Optional[str] = None,
    ) -> Decision: ...
    def report(
        self, call: Union[str, Decision], *, ok: bool = True, tokens: int = 0, latency_ms: int = 0
    ) -> Optional[int]: ...
    def record_human(
        self, call: Union[str, Decision], action: Literal["allow", "deny", "escalate"], *, by: str
    ) -> Optional[int]: ...
    def new_task(self) -> int: ...
    def close(self) -> None: ...
    def state(self) -> SessionState: ...
    def __enter__(self) -> Session: ...
    def __exit__(self, *exc: object) -> bool: ...

class Engine:
    """The engine: build one from a table or a policy and share it across threads."""

    def __init__(
        self,
        table: Union[PathLike, bytes, None] = None,
        *,
        policy: Optional[PathLike] = None,
        audit: Optional[PathLike] = None,
        durability: Literal["fsync", "buffered"] = "fsync",
        restore: bool = False,
        clock: Optional[ManualClock] = None,
        shadow: Union[bool, str, Sequence[str], None] = None,
        sets: Optional[Mapping[str, Sequence[str]]] = None,
        kill_file: Optional[PathLike] = None,
        housekeeping: Optional[float] = None,
        breaker_min_results: Optional[int] = None,
        breaker_cooldown: Optional[float] = None,
        shards: Optional[int] = None,
    ) -> None: ...
    @classmethod
    def from_policy(cls, path: PathLike, **options: Any) -> Engine: ...
    @classmethod
    def from_table(cls, table: Union[PathLike, bytes], **options: Any) -> Engine: ...
    def session(
        self,
        name: Optional[str] = None,
        *,
        agent: str,
        bind: Optional[Mapping[str, str]] = None,
        context: Optional[str] = None,
    ) -> Session: ...
    def pending_escalations(self) -> list[Escalation]: ...
    def approve(self, escalation: EscalationRef, *, by: str, reason: Optional[str] = None) -> Resolution: ...
    def reject(self, escalation: EscalationRef, *, by: str, reason: Optional[str] = None) -> Resolution: ...
    def resolve(
        self,
        escalation: EscalationRef,
        resolution: Literal["approve", "reject"],
        *,
        by: str,
        reason: Optional[str] = None,
    ) -> Resolution: ...
    def expire_escalations(self) -> list[Resolution]: ...
    def wait(self, escalation: EscalationRef, timeout: Optional[float] = None) -> Literal["allow", "deny"]: ...
    def report(
        self, call: Union[str, Decision], *, ok: bool = True, tokens: int = 0, latency_ms: int = 0
    ) -> Optional[int]: ...
    def record_human(
        self, call: Union[str, Decision], action: Literal["allow", "deny", "escalate"], *, by: str
    ) -> Optional[int]: ...
    def kill_all(self, *, by: str) -> None: ...
    def resume_all(self, *, by: str) -> None: ...
    def kill_agent(self, agent: str, *, by: str) -> None: ...
    def resume_agent(self, agent: str, *, by: str) -> None: ...
    def reset_breaker(self, agent: str, *, by: str) -> None: ...
    def set_mode(self, agent: str, mode: Optional[Literal["shadow", "enforce"]], *, by: str) -> None: ...
    def suspensions(self) -> dict[str, Any]: ...
    def poll_kill_file(self) -> bool: ...
    @property
    def table_hash(self) -> str: ...
    @property
    def policy(self) -> Tuple[str, Optional[str]]: ...
    @property
    def agents(self) -> list[str]: ...
    @property
    def tools(self) -> dict[str, dict[str, str]]: ...
    @property
    def audit_head(self) -> Optional[int]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Engine: ...
    def __exit__(self, *exc: object) -> bool: ...
