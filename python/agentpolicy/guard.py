"""``guard``: wrap a plain tool function so the policy decides every call of it.

Deny raises ``PolicyDenied`` and the function is never called; escalate raises
``EscalationPending``, or asks a resolver callback, or waits for a human's answer; allow
calls the function and reports its result (ok, latency, tokens) or its exception
(an error, which feeds the agent's error-rate breakers) to the engine."""

from __future__ import annotations

import functools
import inspect
import time
from typing import Any, Callable, Mapping, Optional, TypeVar, Union

from .errors import EscalationPending, InvalidArgument, PolicyDenied

F = TypeVar("F", bound=Callable[..., Any])

_APPROVE = {True, "approve", "approved", "allow"}
_REJECT = {False, "reject", "rejected", "deny"}


def _value(option: Any, arguments: Mapping[str, Any]) -> Any:
    """An option given as a value, or computed from the call's arguments."""
    return option(arguments) if callable(option) else option


def guard(
    session: Any,
    *,
    tool: Optional[str] = None,
    resolver: Optional[Callable[[Any], Union[bool, str, None]]] = None,
    wait: Union[bool, float, None] = None,
    by: str = "resolver",
    confidence: Any = None,
    untrusted: Any = None,
    read: Any = None,
    write: Any = None,
    reasoning: Any = None,
    tokens: Optional[Callable[[Any], int]] = None,
) -> Callable[[F], F]:
    """Decorate a tool function so that every call is decided by the policy first.

    ``session`` is a ``Session``, or a function returning the session to use (for a
    framework that opens one per run). The tool's name is ``tool`` or the function's
    name; the function's arguments that are parameters of the tool in the policy are
    passed to ``decide`` by name (others are the function's own business; ``None``
    means "not given", so a condition on it fails safe).

    ``confidence``, ``untrusted``, ``read``, ``write`` and ``reasoning`` are passed to
    ``decide``; each may be a value or a function of the call's arguments (a dict),
    e.g. ``read=lambda a: ("matter_documents", {"matter": a["matter"]})``.

    On escalate: with ``resolver``, it is called with the ``Decision`` and answers
    ``True`` / ``"approve"`` (approved as ``by``), ``False`` / ``"reject"``, or ``None``
    (no answer: ``EscalationPending``); with ``wait`` (``True``, or a timeout in
    seconds) the call blocks, without the GIL, until a human resolves the escalation
    through ``Engine.approve`` / ``reject`` on another thread, or it times out; with
    neither, ``EscalationPending`` is raised at once. An approval is re-checked (kill
    switch, flow), so it can still end in ``PolicyDenied``.

    ``tokens``, if given, computes the tokens a result cost (reported against limits).
    """

    def decorate(fn: F) -> F:
        name = tool or fn.__name__
        signature = inspect.signature(fn)

        def session_now() -> Any:
            s = session() if callable(session) and not hasattr(session, "decide") else session
            if s is None or not hasattr(s, "decide"):
                raise InvalidArgument(
                    f"guard({name}): `session` must be a Session or return one, got {type(s).__name__}",
                    argument="session",
                )
            return s

        def decide(args: tuple, kwargs: dict) -> tuple[Any, Any]:
            s = session_now()
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as e:
                raise InvalidArgument(f"{name}: {e}", argument="args") from None
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            params = s.engine.tools.get(name)
            call_args = {
                k: v
                for k, v in arguments.items()
                if v is not None and (params is None or k in params)
            }
            marked = _value(untrusted, arguments)
            if marked is not None and params is not None:
                # Only the tool's parameters have a provenance the policy can test.
                marked = [m for m in ([marked] if isinstance(marked, str) else marked) if m in params]
            decision = s.decide(
                name,
                call_args,
                confidence=_value(confidence, arguments),
                untrusted=marked,
                read=_value(read, arguments),
                write=_value(write, arguments),
                reasoning=_value(reasoning, arguments),
            )
            if decision.outcome == "deny":
                raise PolicyDenied(decision)
            if decision.outcome == "escalate":
                resolution = _settle(s, decision)
                if resolution is not None and resolution != "allow":
                    raise PolicyDenied(decision, resolution if not isinstance(resolution, str) else None)
            return s, decision

        def _settle(s: Any, decision: Any) -> Any:
            engine = s.engine
            if resolver is not None:
                answer = resolver(decision)
                if answer is None:
                    raise EscalationPending(decision)
                if answer in _APPROVE:
                    r = engine.approve(decision, by=by)
                elif answer in _REJECT:
                    r = engine.reject(decision, by=by)
                else:
                    raise InvalidArgument(
                        f"guard({name}): the resolver answered {answer!r}; expected True / 'approve', "
                        "False / 'reject', or None",
                        argument="resolver",
                    )
                return "allow" if r.outcome == "allow" else r
            if wait:
                timeout = None if wait is True else float(wait)
                outcome = engine.wait(decision, timeout=timeout)
                return outcome
            raise EscalationPending(decision)

        def finish(s: Any, decision: Any, started: float, ok: bool, result: Any = None) -> None:
            latency = int((time.monotonic() - started) * 1000)
            spent = int(tokens(result)) if (ok and tokens is not None) else 0
            s.report(decision, ok=ok, tokens=spent, latency_ms=latency)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                s, decision = decide(args, kwargs)
                started = time.monotonic()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException:
                    finish(s, decision, started, ok=False)
                    raise
                finish(s, decision, started, ok=True, result=result)
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            s, decision = decide(args, kwargs)
            started = time.monotonic()
            try:
                result = fn(*args, **kwargs)
            except BaseException:
                finish(s, decision, started, ok=False)
                raise
            finish(s, decision, started, ok=True, result=result)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate
