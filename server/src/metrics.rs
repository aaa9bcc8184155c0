//! Prometheus text exposition of what the service did: decisions by agent, tool and
//! outcome, the decide latency as a histogram, requests refused, and the pending
//! escalations gauge (read from the engine when scraped). Counters only grow; labels
//! come from names the table knows, so their number is bounded by the policy.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

#[derive(Debug, Default)]
struct Counts {
    decisions: BTreeMap<(String, String, &'static str), u64>,
    refusals: BTreeMap<u16, u64>,
    latency_buckets: [u64; BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    counts: Mutex<Counts>,
}

impl Metrics {
    /// One decision as told to the caller, and how long the engine took for it.
    pub fn decision(&self, agent: &str, tool: &str, outcome: &'static str, took: Duration) {
        let Ok(mut c) = self.counts.lock() else {
            return;
        };
        *c.decisions
            .entry((agent.to_owned(), tool.to_owned(), outcome))
            .or_default() += 1;
        let secs = took.as_secs_f64();
        for (bucket, bound) in c.latency_buckets.iter_mut().zip(BUCKETS) {
            if secs <= bound {
                *bucket += 1;
            }
        }
        c.latency_count += 1;
        c.latency_sum += secs;
    }

    /// A request refused with this status (401 or 403).
    pub fn refusal(&self, status: u16) {
        if let Ok(mut c) = self.counts.lock() {
            *c.refusals.entry(status).or_default() += 1;
        }
    }

    /// The exposition, with the pending escalations gauge.
    pub fn render(&self, pending_escalations: usize) -> String {
        let mut out = String::new();
        let Ok(c) = self.counts.lock() else {
            return out;
        };
        let _ = writeln!(
            out,
            "# HELP agentpolicy_decisions_total Decisions by agent, tool and the outcome the caller was told.\n# TYPE agentpolicy_decisions_total counter"
        );
        for ((agent, tool, outcome), n) in &c.decisions {
            let _ = writeln!(
                out,
                "agentpolicy_decisions_total{{agent=\"{}\",tool=\"{}\",outcome=\"{outcome}\"}} {n}",
                escape(agent),
                escape(tool)
            );
        }
        let _ = writeln!(
            out,
            "# HELP agentpolicy_decide_seconds Time the engine took to decide a call, audit write included.\n# TYPE agentpolicy_decide_seconds histogram"
        );
        for (bound, n) in BUCKETS.iter().zip(c.latency_buckets) {
            let _ = writeln!(
                out,
                "agentpolicy_decide_seconds_bucket{{le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "agentpolicy_decide_seconds_bucket{{le=\"+Inf\"}} {}\nagentpolicy_decide_seconds_sum {}\nagentpolicy_decide_seconds_count {}",
            c.latency_count, c.latency_sum, c.latency_count
        );
        let _ = writeln!(
            out,
            "# HELP agentpolicy_refusals_total Requests refused for missing or bad credentials (401) or role and scope (403).\n# TYPE agentpolicy_refusals_total counter"
        );
        for (status, n) in &c.refusals {
            let _ = writeln!(out, "agentpolicy_refusals_total{{status=\"{status}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP agentpolicy_pending_escalations Escalations waiting for a human.\n# TYPE agentpolicy_pending_escalations gauge\nagentpolicy_pending_escalations {pending_escalations}"
        );
        out
    }
}

/// Gauges read from the engine and the notifier when scraped: breakers open, agents
/// stopped by the kill switch, whether the audit log takes records, notifications.
pub(crate) fn engine_state(out: &mut String, app: &crate::App) {
    if let Ok(s) = app.engine.suspensions() {
        let _ = writeln!(
            out,
            "# HELP agentpolicy_breaker_open Agents whose circuit breaker is tripped (1), by breaker.\n# TYPE agentpolicy_breaker_open gauge"
        );
        for (agent, breaker) in &s.tripped {
            let _ = writeln!(
                out,
                "agentpolicy_breaker_open{{agent=\"{}\",breaker=\"{}\"}} 1",
                escape(agent),
                escape(breaker)
            );
        }
        let _ = writeln!(
            out,
            "# HELP agentpolicy_suspended Kill switches on: every agent (agent=\"*\") or one.\n# TYPE agentpolicy_suspended gauge\nagentpolicy_suspended{{agent=\"*\"}} {}",
            u8::from(s.kill_all)
        );
        for agent in &s.killed {
            let _ = writeln!(
                out,
                "agentpolicy_suspended{{agent=\"{}\"}} 1",
                escape(agent)
            );
        }
    }
    if let Some(f) = app.engine.audit_flush_stats() {
        let _ = writeln!(
            out,
            "# HELP agentpolicy_audit_flush_seconds Time to write queued audit records (and fsync them when due), per flush.\n# TYPE agentpolicy_audit_flush_seconds histogram"
        );
        for (bound, n) in agentpolicy_runtime::audit::FLUSH_BUCKETS_US
            .iter()
            .zip(f.buckets)
        {
            let _ = writeln!(
                out,
                "agentpolicy_audit_flush_seconds_bucket{{le=\"{}\"}} {n}",
                *bound as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "agentpolicy_audit_flush_seconds_bucket{{le=\"+Inf\"}} {}\nagentpolicy_audit_flush_seconds_sum {}\nagentpolicy_audit_flush_seconds_count {}\n# HELP agentpolicy_audit_flush_failures_total Audit flushes that failed.\n# TYPE agentpolicy_audit_flush_failures_total counter\nagentpolicy_audit_flush_failures_total {}",
            f.count,
            f.sum_us as f64 / 1e6,
            f.count,
            f.failed
        );
    }
    let _ = writeln!(
        out,
        "# HELP agentpolicy_audit_failed 1 once an audit write failed: every decision is then denied.\n# TYPE agentpolicy_audit_failed gauge\nagentpolicy_audit_failed {}",
        u8::from(app.engine.audit_failure().is_some())
    );
    if let Ok(n) = app.notifier.lock()
        && let Some(n) = n.as_ref()
    {
        use std::sync::atomic::Ordering::Relaxed;
        let st = &n.stats;
        let _ = writeln!(
            out,
            "# HELP agentpolicy_notifications_total Webhook deliveries by result.\n# TYPE agentpolicy_notifications_total counter\nagentpolicy_notifications_total{{result=\"delivered\"}} {}\nagentpolicy_notifications_total{{result=\"retried\"}} {}\nagentpolicy_notifications_total{{result=\"failed\"}} {}\n# HELP agentpolicy_notifications_pending Webhook deliveries owed.\n# TYPE agentpolicy_notifications_pending gauge\nagentpolicy_notifications_pending {}",
            st.delivered.load(Relaxed),
            st.retried.load(Relaxed),
            st.failed.load(Relaxed),
            st.pending.load(Relaxed)
        );
    }
}

/// A label value in the exposition format: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_histogram_and_gauge() {
        let m = Metrics::default();
        m.decision("research", "search", "allow", Duration::from_micros(300));
        m.decision("research", "search", "allow", Duration::from_millis(30));
        m.decision("bill\"ing", "pay", "deny", Duration::from_secs(2));
        m.refusal(401);
        let text = m.render(3);
        assert!(text.contains(
            "agentpolicy_decisions_total{agent=\"research\",tool=\"search\",outcome=\"allow\"} 2"
        ));
        assert!(text.contains("agent=\"bill\\\"ing\""));
        assert!(text.contains("agentpolicy_decide_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("agentpolicy_decide_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("agentpolicy_decide_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("agentpolicy_decide_seconds_count 3"));
        assert!(text.contains("agentpolicy_refusals_total{status=\"401\"} 1"));
        assert!(text.contains("agentpolicy_pending_escalations 3"));
    }
}
