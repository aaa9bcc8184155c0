"""agentpolicy: decide every tool call of an AI agent in process.

The compiler and the runtime engine of agentpolicy, built with PyO3 (no solver: proofs
stay in the ``agentpolicy check`` CLI)::

    from decimal import Decimal
    import agentpolicy

    engine = agentpolicy.Engine(policy="examples/law_firm", audit="audit.jsonl")
    with engine.session("billing-1", agent="billing") as s:
        d = s.decide("send_invoice", {"amount": Decimal("1200"), "matter_code": "M-1"})
        if d.allowed:
            ...  # run the tool, then
            s.report(d, ok=True, tokens=300, latency_ms=90)

``guard`` wraps a tool function so the policy decides each call (see its docstring).
"""

from ._agentpolicy import (
    Decision,
    Engine,
    Escalation,
    ManualClock,
    Resolution,
    Session,
    __version__,
    compile,
)
from .errors import (
    AgentPolicyError,
    AuditError,
    Diagnostic,
    EngineClosed,
    EngineFault,
    EscalationError,
    EscalationPending,
    InvalidArgument,
    PolicyCompileError,
    PolicyDenied,
    SessionError,
    TableError,
    UnknownName,
)
from .guard import guard

__all__ = [
    "AgentPolicyError",
    "AuditError",
    "Decision",
    "Diagnostic",
    "Engine",
    "EngineClosed",
    "EngineFault",
    "Escalation",
    "EscalationError",
    "EscalationPending",
    "InvalidArgument",
    "ManualClock",
    "PolicyCompileError",
    "PolicyDenied",
    "Resolution",
    "Session",
    "SessionError",
    "TableError",
    "UnknownName",
    "__version__",
    "compile",
    "guard",
]
