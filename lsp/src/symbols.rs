//! Document symbols (an outline of one file: items, with an agent's rules and a tool's
//! parameters as children) and workspace symbols (every declaration of the policy and
//! the standard library it uses, filtered by the query).

use agentpolicy::syntax::ast::{AgentMemberKind, AssertDecl, ItemKind, Target, TextRange};
use tower_lsp_server::ls_types::{
    DocumentSymbol, Location, OneOf, SymbolKind as LspKind, Uri, WorkspaceSymbol,
};

use crate::convert::TextView;
use crate::index::SymbolKind;
use crate::lookup::format_value;
use crate::state::World;

/// `textDocument/documentSymbol`.
pub fn document_symbols(world: &World<'_>, uri: &Uri) -> Result<Vec<DocumentSymbol>, String> {
    let doc = world.document(uri)?;
    let view = world.state.view(doc);
    let parsed = world.state.parsed(doc);
    let model = &world.analysis.model;
    let mut out = Vec::new();
    for item in &parsed.tree.items {
        let sym = |name: &str,
                   detail: Option<String>,
                   kind: LspKind,
                   selection: TextRange,
                   children: Vec<DocumentSymbol>| {
            symbol(&view, name, detail, kind, item.range, selection, children)
        };
        match &item.kind {
            ItemKind::Policy(p) => out.push(sym(
                &p.name.text,
                p.version.as_ref().map(|v| format!("version {}", v.value)),
                LspKind::PACKAGE,
                p.name.range,
                Vec::new(),
            )),
            ItemKind::Use(u) => {
                let name = u
                    .path
                    .iter()
                    .map(|n| n.text.as_str())
                    .collect::<Vec<_>>()
                    .join(".");
                out.push(sym(
                    &name,
                    Some("use".to_string()),
                    LspKind::MODULE,
                    u.range,
                    Vec::new(),
                ));
            }
            ItemKind::Tiers(t) => {
                let children = t
                    .tiers
                    .iter()
                    .map(|n| {
                        symbol(
                            &view,
                            &n.text,
                            None,
                            LspKind::ENUM_MEMBER,
                            n.range,
                            n.range,
                            Vec::new(),
                        )
                    })
                    .collect();
                let name = t
                    .tiers
                    .iter()
                    .map(|n| n.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" < ");
                let selection = t.tiers.first().map(|n| n.range).unwrap_or(item.range);
                out.push(sym(
                    &name,
                    Some("tiers".to_string()),
                    LspKind::ENUM,
                    selection,
                    children,
                ));
            }
            ItemKind::Set(d) => {
                let detail = match &d.source {
                    agentpolicy::syntax::ast::SetSource::Members(m, _) => {
                        format!("set of {} texts", m.len())
                    }
                    agentpolicy::syntax::ast::SetSource::Deploy(_) => "set, bound at deploy".into(),
                };
                out.push(sym(
                    &d.name.text,
                    Some(detail),
                    LspKind::CONSTANT,
                    d.name.range,
                    Vec::new(),
                ));
            }
            ItemKind::Retain(r) => {
                let name = match &r.tier {
                    Some(t) => format!("retain audit for {} {}", t.text, r.period.text),
                    None => format!("retain audit {}", r.period.text),
                };
                out.push(sym(
                    &name,
                    Some("retention".to_string()),
                    LspKind::PROPERTY,
                    r.period.range,
                    Vec::new(),
                ));
            }
            ItemKind::Isolate(n) => out.push(sym(
                &n.text,
                Some("isolate".to_string()),
                LspKind::KEY,
                n.range,
                Vec::new(),
            )),
            ItemKind::Resource(r) => {
                let detail = r.tier.first().map(|t| format!("resource, tier {}", t.text));
                out.push(sym(
                    &r.name.text,
                    detail,
                    LspKind::STRUCT,
                    r.name.range,
                    Vec::new(),
                ));
            }
            ItemKind::Sink(s) => {
                let detail = s
                    .clearance
                    .first()
                    .map(|t| format!("sink, clearance {}", t.text));
                out.push(sym(
                    &s.name.text,
                    detail,
                    LspKind::INTERFACE,
                    s.name.range,
                    Vec::new(),
                ));
            }
            ItemKind::Tool(t) => {
                let children = t
                    .params
                    .iter()
                    .map(|p| {
                        let ty = format!("{}{}", p.ty.keyword(), if p.optional { "?" } else { "" });
                        symbol(
                            &view,
                            &p.name.text,
                            Some(ty),
                            LspKind::FIELD,
                            p.range,
                            p.name.range,
                            Vec::new(),
                        )
                    })
                    .collect();
                let effects: Vec<&str> = t.effects.iter().map(|(e, _)| e.keyword()).collect();
                out.push(sym(
                    &t.name.text,
                    Some(effects.join(", ")),
                    LspKind::FUNCTION,
                    t.name.range,
                    children,
                ));
            }
            ItemKind::Threshold(t) => {
                let value = model
                    .thresholds
                    .iter()
                    .find(|d| d.name == t.name.text)
                    .map(|d| format_value(&d.value));
                out.push(sym(
                    &t.name.text,
                    value,
                    LspKind::CONSTANT,
                    t.name.range,
                    Vec::new(),
                ));
            }
            ItemKind::Escalation(e) => {
                let detail = e.notify.first().map(|n| n.value.clone());
                out.push(sym(
                    &e.name.text,
                    detail,
                    LspKind::EVENT,
                    e.name.range,
                    Vec::new(),
                ));
            }
            ItemKind::Agent(a) => {
                let children = a
                    .members
                    .iter()
                    .filter_map(|m| match &m.kind {
                        AgentMemberKind::Rule(r) => {
                            let target = match &r.target {
                                Target::Tool(n) => n.text.clone(),
                                Target::All(_) => "*".to_string(),
                            };
                            let name = format!("{} {target}", r.kind.keyword());
                            let detail = r.route.as_ref().map(|n| format!("to {}", n.text));
                            Some(symbol(
                                &view,
                                &name,
                                detail,
                                LspKind::METHOD,
                                m.range,
                                r.target.range(),
                                Vec::new(),
                            ))
                        }
                        AgentMemberKind::Credential(c) => Some(symbol(
                            &view,
                            &c.name.text,
                            Some("credential".to_string()),
                            LspKind::KEY,
                            m.range,
                            c.name.range,
                            Vec::new(),
                        )),
                        _ => None,
                    })
                    .collect();
                out.push(sym(
                    &a.name.text,
                    Some("agent".to_string()),
                    LspKind::CLASS,
                    a.name.range,
                    children,
                ));
            }
            ItemKind::Assert(a) => {
                let name = match a {
                    AssertDecl::NeverCalls { agent, target, .. } => {
                        let target = match target {
                            Target::Tool(n) => n.text.clone(),
                            Target::All(_) => "*".to_string(),
                        };
                        format!("assert never {} calls {target}", agent.text)
                    }
                    AssertDecl::TaintedIrreversibleEscalates => {
                        "assert every irreversible tool escalates when tainted".to_string()
                    }
                    AssertDecl::EveryIrreversibleEscalates => {
                        "assert every irreversible tool escalates".to_string()
                    }
                    AssertDecl::NeverReads { agent, tier } => {
                        format!("assert {} never reads {}", agent.text, tier.text)
                    }
                    AssertDecl::NoFlow { tier, sink } => {
                        format!("assert no flow from {} to {}", tier.text, sink.text)
                    }
                };
                out.push(sym(&name, None, LspKind::BOOLEAN, item.range, Vec::new()));
            }
            ItemKind::Test(t) => {
                out.push(sym(
                    &format!("test {:?}", t.name.value),
                    None,
                    LspKind::EVENT,
                    t.name.range,
                    Vec::new(),
                ));
            }
        }
    }
    Ok(out)
}

#[expect(
    deprecated,
    reason = "`DocumentSymbol::deprecated` must still be written; `tags` replaces it"
)]
fn symbol(
    view: &TextView<'_>,
    name: &str,
    detail: Option<String>,
    kind: LspKind,
    range: TextRange,
    selection: TextRange,
    children: Vec<DocumentSymbol>,
) -> DocumentSymbol {
    // The protocol requires the selection inside the range.
    let selection = if range.start <= selection.start && selection.end <= range.end {
        selection
    } else {
        range
    };
    DocumentSymbol {
        name: if name.is_empty() {
            "_".to_string()
        } else {
            name.to_string()
        },
        detail,
        kind,
        tags: None,
        deprecated: None,
        range: view.range(range),
        selection_range: view.range(selection),
        children: (!children.is_empty()).then_some(children),
    }
}

/// `workspace/symbol`: declarations whose name contains the query's characters in order
/// (case-insensitive), user files first.
pub fn workspace_symbols(world: &World<'_>, query: &str) -> Vec<WorkspaceSymbol> {
    let query = query.to_lowercase();
    let mut out = Vec::new();
    let docs = world
        .state
        .files()
        .iter()
        .chain(world.state.stdlib_documents().iter());
    for doc in docs {
        let Some(uri) = doc.uri.clone() else {
            continue;
        };
        let view = world.state.view(doc);
        for o in world.index.in_file(doc.id) {
            if !o.is_decl || !matches_query(&o.symbol.name, &query) {
                continue;
            }
            let kind = match o.symbol.kind {
                SymbolKind::Policy => LspKind::PACKAGE,
                SymbolKind::Module => LspKind::MODULE,
                SymbolKind::Tier => LspKind::ENUM_MEMBER,
                SymbolKind::Key => LspKind::KEY,
                SymbolKind::Resource => LspKind::STRUCT,
                SymbolKind::Sink => LspKind::INTERFACE,
                SymbolKind::Tool => LspKind::FUNCTION,
                SymbolKind::Param => LspKind::FIELD,
                SymbolKind::Threshold | SymbolKind::Set => LspKind::CONSTANT,
                SymbolKind::Route => LspKind::EVENT,
                SymbolKind::Agent => LspKind::CLASS,
                SymbolKind::Credential => LspKind::KEY,
                SymbolKind::Confidence => LspKind::VARIABLE,
            };
            let container = o.symbol.container.clone().or_else(|| doc.module.clone());
            out.push(WorkspaceSymbol {
                name: o.symbol.name.clone(),
                kind,
                tags: None,
                container_name: container,
                location: OneOf::Left(Location::new(uri.clone(), view.range(o.range))),
                data: None,
            });
        }
    }
    out
}

fn matches_query(name: &str, query: &str) -> bool {
    let mut chars = query.chars();
    let mut want = chars.next();
    for c in name.chars().flat_map(char::to_lowercase) {
        match want {
            None => return true,
            Some(w) if w == c => want = chars.next(),
            Some(_) => {}
        }
    }
    want.is_none()
}
