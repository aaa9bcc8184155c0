//! Asserts: the policy's `assert` declarations resolved to `AssertDef`s for the verifier.
//! An assert naming something unknown, or with a condition in error, is reported and left
//! out; only user files are read (the standard library declares no asserts).

use super::names::NameKind;
use super::{FileInput, Resolver, loc};
use crate::model::*;
use crate::syntax::ast::{self, ItemKind};

impl Resolver {
    pub(super) fn resolve_asserts(&mut self, files: &[FileInput<'_>]) {
        for file in files.iter().filter(|f| f.module.is_none()) {
            for item in &file.tree.items {
                let ItemKind::Assert(a) = &item.kind else {
                    continue;
                };
                let at = loc(file.id, item.range);
                let resolved = match a {
                    ast::AssertDecl::EveryIrreversibleEscalates => {
                        Some(AssertDef::EveryIrreversibleEscalates { loc: at })
                    }
                    ast::AssertDecl::TaintedIrreversibleEscalates => {
                        Some(AssertDef::TaintedIrreversibleEscalates { loc: at })
                    }
                    ast::AssertDecl::NeverReads { agent, tier } => {
                        let agent = self.resolve(agent, file.id, &[NameKind::Agent]);
                        let tier = self.resolve(tier, file.id, &[NameKind::Tier]);
                        agent.zip(tier).map(|(a, t)| AssertDef::NeverReads {
                            agent: AgentId(a),
                            tier: TierId(t),
                            loc: at,
                        })
                    }
                    ast::AssertDecl::NoFlow { tier, sink } => {
                        let tier = self.resolve(tier, file.id, &[NameKind::Tier]);
                        let sink = self.resolve(sink, file.id, &[NameKind::Sink]);
                        tier.zip(sink).map(|(t, s)| AssertDef::NoFlow {
                            tier: TierId(t),
                            sink: SinkId(s),
                            loc: at,
                        })
                    }
                    ast::AssertDecl::NeverCalls {
                        agent,
                        target,
                        condition,
                    } => {
                        let agent = self.resolve(agent, file.id, &[NameKind::Agent]);
                        let target = match target {
                            ast::Target::All(_) => Some(RuleTarget::All),
                            ast::Target::Tool(n) => self
                                .resolve(n, file.id, &[NameKind::Tool])
                                .map(|t| RuleTarget::Tool(ToolId(t))),
                        };
                        match (agent, target) {
                            (Some(agent), Some(target)) => {
                                let condition = match condition {
                                    None => Some(None),
                                    Some(expr) => {
                                        self.condition(expr, target, file.id).ok().map(Some)
                                    }
                                };
                                condition.map(|condition| AssertDef::NeverCalls {
                                    agent: AgentId(agent),
                                    target,
                                    condition,
                                    loc: at,
                                })
                            }
                            _ => None,
                        }
                    }
                };
                if let Some(r) = resolved {
                    self.model.asserts.push(r);
                }
            }
        }
    }
}
