//! One-to-one mappings from the compiler's syntax enums to the runtime's table enums.
//! The runtime cannot depend on the compiler, so each enum exists twice; these functions
//! are the only place the two meet.

use agentpolicy_runtime as rt;

use crate::syntax::ast::{CompareOp, Effect, Mode, RuleKind, TimeoutOutcome, TypeName};

pub(crate) fn value_type(t: TypeName) -> rt::ValueType {
    match t {
        TypeName::Text => rt::ValueType::Text,
        TypeName::Number => rt::ValueType::Number,
        TypeName::Money => rt::ValueType::Money,
        TypeName::Bool => rt::ValueType::Bool,
        TypeName::Duration => rt::ValueType::Duration,
        TypeName::Percent => rt::ValueType::Percent,
        TypeName::TextList => rt::ValueType::TextList,
    }
}

pub(crate) fn effect(e: Effect) -> rt::Effect {
    match e {
        Effect::Read => rt::Effect::Read,
        Effect::Write => rt::Effect::Write,
        Effect::External => rt::Effect::External,
        Effect::Financial => rt::Effect::Financial,
        Effect::Irreversible => rt::Effect::Irreversible,
    }
}

pub(crate) fn mode(m: Mode) -> rt::Mode {
    match m {
        Mode::Shadow => rt::Mode::Shadow,
        Mode::Enforce => rt::Mode::Enforce,
    }
}

pub(crate) fn rule_kind(k: RuleKind) -> rt::RuleKind {
    match k {
        RuleKind::Allow => rt::RuleKind::Allow,
        RuleKind::Escalate => rt::RuleKind::Escalate,
        RuleKind::Deny => rt::RuleKind::Deny,
    }
}

pub(crate) fn timeout_outcome(o: TimeoutOutcome) -> rt::TimeoutOutcome {
    match o {
        TimeoutOutcome::Allow => rt::TimeoutOutcome::Allow,
        TimeoutOutcome::Deny => rt::TimeoutOutcome::Deny,
    }
}

pub(crate) fn cmp_op(op: CompareOp) -> rt::CmpOp {
    match op {
        CompareOp::Lt => rt::CmpOp::Lt,
        CompareOp::Le => rt::CmpOp::Le,
        CompareOp::Gt => rt::CmpOp::Gt,
        CompareOp::Ge => rt::CmpOp::Ge,
        CompareOp::Eq => rt::CmpOp::Eq,
        CompareOp::Ne => rt::CmpOp::Ne,
    }
}
