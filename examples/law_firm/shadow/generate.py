# Generates examples/law_firm/shadow/trace.jsonl; run from the repository root:
#   python3 examples/law_firm/shadow/generate.py
# then replay it into audit.jsonl (see the example's README). Both files are committed.
import json
lines = []
def call(**kw):
    lines.append(json.dumps(kw, separators=(",", ":")))
t = 0
def at(step=8 * 3600 * 1000):
    global t
    t += step
    return t
matters = ["M-2041", "M-1877", "M-2102", "M-1990", "M-2110", "M-2015", "M-1933", "M-2088"]
plan = []
# 46 billing decisions, shadow mode. Human disagreements at decisions 2, 4 and 30.
for i in range(46):
    m = matters[i % len(matters)]
    k = i % 6
    if k in (0, 3):
        plan.append(("read_billing_history", {"matter_code": m}, "allow", {"resource": "billing_records", "keys": {"matter": m}}))
    elif k == 1:
        plan.append(("record_time", {"hours": 1.5, "matter_code": m}, "allow", None))
    elif k in (2, 4):
        amt = 1200 + 350 * i
        if amt >= 5000:
            plan.append(("send_invoice", {"amount": f"${amt:,}", "matter_code": m}, "escalate", None))
        else:
            plan.append(("send_invoice", {"amount": f"${amt:,}", "matter_code": m}, "allow", None))
    else:
        plan.append(("send_invoice", {"amount": "$2,400", "matter_code": m}, "allow", None))
# The disagreements: the clerk escalated an invoice the policy would send (2), sent one
# the policy would escalate (4), and made a trust transfer directly that the policy
# would escalate (30).
plan[1] = ("send_invoice", {"amount": "$4,800", "matter_code": matters[1]}, "escalate", None)
plan[3] = ("send_invoice", {"amount": "$6,100", "matter_code": matters[3]}, "allow", None)
plan[29] = ("transfer_from_trust", {"amount": "$900", "payee": "Hartwell & Pike LLP operating account"}, "allow", None)
for i, (tool, args, human, read) in enumerate(plan):
    m = matters[i % len(matters)]
    line = {}
    line["at"] = "2026-11-02T18:00:00Z" if i == 0 else at()
    session = f"billing-{m}"
    line.update({"session": session, "agent": "billing", "tool": tool, "args": args, "confidence": 0.95})
    if read:
        line["read"] = read
    line["result"] = {"ok": i != 37, "tokens": 300, "latency_ms": 90}
    line["human"] = {"action": human, "by": "clerk@hartwellpike.example"}
    if tool == "send_invoice" and i % 5 == 0:
        line["reasoning"] = f"Invoice for {m}: time entries for November at the engagement letter's rates"
    lines.append(line)
# Contexts on the lines that open sessions.
seen = set()
for line in lines:
    if line["session"] not in seen:
        seen.add(line["session"])
        line["context"] = "schedule:nightly-billing"
# Intake, supervised: 12 decisions, each approved by practice support but one.
for j in range(6):
    s = f"intake-{j+1}"
    party = ["Northwind Holdings", "Globex Inc", "Initech", "Umbrella LLC", "Stark Partners", "Wayne Trust"][j]
    lines.append({"at": at(5 * 60 * 1000), "session": s, "agent": "intake", "tool": "check_conflicts", "args": {"party": party}, "confidence": 0.95, "context": "webhook:intake-form", "result": {"ok": True, "tokens": 150, "latency_ms": 60}, "expect": "escalate"})
    lines.append({"at": at(5 * 60 * 1000), "op": "approve", "session": s, "by": "paralegal@hartwellpike.example"})
    lines.append({"at": at(5 * 60 * 1000), "session": s, "agent": "intake", "tool": "open_matter", "args": {"client": party, "practice_area": "commercial leasing"}, "confidence": 0.95, "result": {"ok": True, "tokens": 200, "latency_ms": 80}, "expect": "escalate"})
    lines.append({"at": at(5 * 60 * 1000), "op": "reject" if j == 2 else "approve", "session": s, "by": "paralegal@hartwellpike.example"})
out = ["// Two weeks of the billing agent in shadow mode beside the billing clerks (what the",
       "// clerk did for the same task is each line's `human`), and the supervised intake agent's",
       "// first requests. Replayed with --audit into audit.jsonl; see the README."]
for l in lines:
    out.append(l if isinstance(l, str) else json.dumps(l, separators=(",", ":")))
open("examples/law_firm/shadow/trace.jsonl", "w").write("\n".join(out) + "\n")
