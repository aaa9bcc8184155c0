//! Declarations: the policy header, tiers, and every named declaration other than
//! agents. Names are declared first, each reserving a model slot with safe defaults (so
//! ids stay dense whatever the errors), then resources, sinks, tools, sets, thresholds
//! and escalation routes are resolved into their slots; last, every route an `escalate`
//! rule uses is checked for a timeout outcome.

use std::collections::BTreeSet;

use super::diagnostics::{repeated_clause, reserved_parameter};
use super::names::{Declared, Entry, NameKind};
use super::{FileInput, MAX_TOOL_PARAMS, Resolver, literal_value, loc, tiers};
use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::model::*;
use crate::syntax::ast::{self, ItemKind, Mode, TextRange};

impl Resolver {
    pub(super) fn check_headers_and_empty(&mut self, files: &[FileInput<'_>]) {
        let mut header: Option<(FileId, TextRange)> = None;
        let mut any_user_file = None;
        for file in files.iter().filter(|f| f.module.is_none()) {
            any_user_file.get_or_insert(file.id);
            if file.tree.items.is_empty() && !file.has_syntax_errors {
                self.report(
                    Diagnostic::new(
                        Code::EmptyPolicy,
                        "this file declares nothing",
                        Label::new(file.id, TextRange::default(), "empty file"),
                    )
                    .with_help("a policy file starts with `policy NAME version \"...\"` and declares tools and agents; delete the file if it is not needed"),
                );
            }
            for item in &file.tree.items {
                let ItemKind::Policy(p) = &item.kind else {
                    continue;
                };
                match header {
                    None => {
                        header = Some((file.id, item.range));
                        self.model.policy = Some(PolicyInfo {
                            name: p.name.text.clone(),
                            version: p.version.as_ref().map(|v| v.value.clone()),
                            loc: loc(file.id, item.range),
                        });
                    }
                    Some((first_file, first_range)) => self.report(
                        Diagnostic::new(
                            Code::MissingPolicyHeader,
                            "a policy has exactly one `policy` header, and this is a second one",
                            Label::new(file.id, item.range, "second header"),
                        )
                        .with_secondary(Label::new(first_file, first_range, "first header"))
                        .with_help("keep one `policy NAME version \"...\"` line for the whole policy (all files of a directory form one policy)"),
                    ),
                }
            }
        }
        let any_items = files
            .iter()
            .filter(|f| f.module.is_none())
            .any(|f| !f.tree.items.is_empty());
        if header.is_none()
            && any_items
            && let Some(file) = any_user_file
        {
            self.report(
                Diagnostic::new(
                    Code::MissingPolicyHeader,
                    "the policy has no `policy` header",
                    Label::new(file, TextRange::default(), "no header in any file of the policy"),
                )
                .with_help("start the policy with `policy NAME version \"2026.11\"`: the name and version go into every audit record"),
            );
        }
    }

    pub(super) fn declare_tiers(&mut self, files: &[FileInput<'_>]) {
        let mut chains = Vec::new();
        for file in files {
            for item in &file.tree.items {
                if let ItemKind::Tiers(t) = &item.kind {
                    chains.push(
                        t.tiers
                            .iter()
                            .map(|n| tiers::TierMention {
                                name: n.clone(),
                                file: file.id,
                            })
                            .collect::<Vec<_>>(),
                    );
                }
            }
        }
        let (ordered, diagnostics) = tiers::order_tiers(&chains);
        self.diagnostics.extend(diagnostics);
        for (rank, tier) in ordered.into_iter().enumerate() {
            let is_std = files
                .iter()
                .any(|f| f.id == tier.file && f.module.is_some());
            let entry = Entry {
                kind: NameKind::Tier,
                index: rank as u32,
                loc: loc(tier.file, tier.name.range),
                from_stdlib: is_std,
            };
            match self.ns.declare(&tier.name.text, entry, true) {
                Ok(_) => self.model.tiers.push(TierDef {
                    name: tier.name.text.clone(),
                    loc: entry.loc,
                }),
                Err(d) => {
                    // Keep ids dense even when the name clashes with another kind.
                    self.model.tiers.push(TierDef {
                        name: tier.name.text.clone(),
                        loc: entry.loc,
                    });
                    self.report(d);
                }
            }
        }
    }

    /// Declares names of every other kind, reserving model slots in order.
    pub(super) fn declare_simple(&mut self, files: &[FileInput<'_>]) {
        for file in files {
            let from_stdlib = file.module.is_some();
            for item in &file.tree.items {
                let (kind, name) = match &item.kind {
                    ItemKind::Isolate(n) => (NameKind::Key, n),
                    ItemKind::Resource(r) => (NameKind::Resource, &r.name),
                    ItemKind::Sink(s) => (NameKind::Sink, &s.name),
                    ItemKind::Tool(t) => (NameKind::Tool, &t.name),
                    ItemKind::Threshold(t) => (NameKind::Threshold, &t.name),
                    ItemKind::Escalation(e) => (NameKind::Route, &e.name),
                    ItemKind::Agent(a) => (NameKind::Agent, &a.name),
                    ItemKind::Set(d) => (NameKind::Set, &d.name),
                    _ => continue,
                };
                let index = self.slot_count(kind);
                let entry = Entry {
                    kind,
                    index,
                    loc: loc(file.id, name.range),
                    from_stdlib,
                };
                match self.ns.declare(&name.text, entry, kind == NameKind::Key) {
                    Ok(Declared::New) => self.reserve_slot(kind, &name.text, entry.loc),
                    Ok(Declared::Existing) => {}
                    Ok(Declared::Shadowed(old)) => self.rename_slot(kind, old.index, entry.loc),
                    Err(d) => self.report(d),
                }
            }
        }
    }

    fn slot_count(&self, kind: NameKind) -> u32 {
        (match kind {
            NameKind::Key => self.model.keys.len(),
            NameKind::Resource => self.model.resources.len(),
            NameKind::Sink => self.model.sinks.len(),
            NameKind::Tool => self.model.tools.len(),
            NameKind::Threshold => self.model.thresholds.len(),
            NameKind::Route => self.model.routes.len(),
            NameKind::Agent => self.model.agents.len(),
            NameKind::Tier => self.model.tiers.len(),
            NameKind::Set => self.model.sets.len(),
        }) as u32
    }

    /// Pushes a definition with safe defaults that `resolve_declarations` fills in; a slot whose
    /// declaration has errors keeps safe defaults so ids stay dense.
    fn reserve_slot(&mut self, kind: NameKind, name: &str, at: Loc) {
        let name = name.to_string();
        match kind {
            NameKind::Key => self.model.keys.push(KeyDef { name, loc: at }),
            NameKind::Resource => self.model.resources.push(ResourceDef {
                name,
                tier: TierId(0),
                keyed: Vec::new(),
                untrusted: false,
                store: None,
                loc: at,
            }),
            NameKind::Sink => self.model.sinks.push(SinkDef {
                name,
                clearance: TierId(0),
                keyed: Vec::new(),
                loc: at,
            }),
            NameKind::Tool => self.model.tools.push(ToolDef {
                name,
                params: Vec::new(),
                effects: Vec::new(),
                reads: Vec::new(),
                writes: Vec::new(),
                untrusted: false,
                loc: at,
            }),
            NameKind::Threshold => self.model.thresholds.push(ThresholdDef {
                name,
                value: Value::Bool(false),
                value_loc: at,
                loc: at,
            }),
            NameKind::Route => self.model.routes.push(RouteDef {
                name,
                notify: None,
                timeout_ms: None,
                timeout_outcome: None,
                loc: at,
            }),
            NameKind::Agent => self.model.agents.push(AgentDef {
                name,
                owner: None,
                purpose: None,
                max_tier: None,
                rules: Vec::new(),
                autonomy: Vec::new(),
                limits: Vec::new(),
                breakers: Vec::new(),
                mode: Mode::Enforce,
                credentials: Vec::new(),
                loc: at,
                stage: None,
                promotions: Vec::new(),
            }),
            NameKind::Set => self.model.sets.push(SetDef {
                name,
                members: Some(Vec::new()),
                loc: at,
            }),
            NameKind::Tier => {}
        }
    }

    fn rename_slot(&mut self, kind: NameKind, index: u32, at: Loc) {
        let i = index as usize;
        match kind {
            NameKind::Resource => self.model.resources[i].loc = at,
            NameKind::Sink => self.model.sinks[i].loc = at,
            NameKind::Tool => self.model.tools[i].loc = at,
            NameKind::Threshold => self.model.thresholds[i].loc = at,
            NameKind::Route => self.model.routes[i].loc = at,
            NameKind::Agent => self.model.agents[i].loc = at,
            NameKind::Key => self.model.keys[i].loc = at,
            NameKind::Set => self.model.sets[i].loc = at,
            NameKind::Tier => {}
        }
    }

    /// Whether `name` at `at` is the declaration that owns its slot (not one shadowed
    /// by a user declaration, not a duplicate).
    pub(super) fn owns_slot(&self, name: &ast::Name, file: FileId) -> Option<u32> {
        let entry = self.ns.get(&name.text)?;
        (entry.loc == loc(file, name.range)).then_some(entry.index)
    }

    fn single<'n>(
        &mut self,
        values: &'n [ast::Name],
        file: FileId,
        owner: &ast::Name,
        clause: &str,
        what: &str,
    ) -> Option<&'n ast::Name> {
        if let Some(second) = values.get(1) {
            self.report(repeated_clause(
                file,
                &format!("`{}`", owner.text),
                clause,
                second.range,
                Some(values[0].range),
            ));
        }
        if values.is_empty() {
            self.report(
                Diagnostic::new(
                    Code::MissingMember,
                    format!("`{}` has no `{clause}`", owner.text),
                    Label::new(file, owner.range, format!("needs `{clause} ...`")),
                )
                .with_help(format!("add `{clause} TIER`: {what}")),
            );
        }
        values.first()
    }

    pub(super) fn resolve_declarations(&mut self, files: &[FileInput<'_>]) {
        for file in files {
            for item in &file.tree.items {
                match &item.kind {
                    ItemKind::Resource(r) => {
                        let Some(i) = self.owns_slot(&r.name, file.id) else {
                            continue;
                        };
                        let (tier, keyed) = self.label(
                            (&r.tier, &r.keyed),
                            file.id,
                            &r.name,
                            ("tier", "the sensitivity of the data it holds"),
                        );
                        if let Some(second) = r.store.get(1) {
                            self.report(repeated_clause(
                                file.id,
                                &format!("`{}`", r.name.text),
                                "from",
                                second.range,
                                None,
                            ));
                        }
                        let store = r
                            .store
                            .first()
                            .and_then(|s| self.resolve(s, file.id, &[NameKind::Sink]))
                            .map(SinkId);
                        let def = &mut self.model.resources[i as usize];
                        (def.tier, def.keyed) = (tier, keyed);
                        def.untrusted = !r.untrusted.is_empty();
                        def.store = store;
                    }
                    ItemKind::Sink(s) => {
                        let Some(i) = self.owns_slot(&s.name, file.id) else {
                            continue;
                        };
                        let (clearance, keyed) = self.label(
                            (&s.clearance, &s.keyed),
                            file.id,
                            &s.name,
                            ("clearance", "the highest tier that may be written to it"),
                        );
                        let def = &mut self.model.sinks[i as usize];
                        (def.clearance, def.keyed) = (clearance, keyed);
                    }
                    ItemKind::Tool(t) => {
                        let Some(i) = self.owns_slot(&t.name, file.id) else {
                            continue;
                        };
                        let def = self.tool(t, file.id);
                        self.model.tools[i as usize] = def;
                    }
                    ItemKind::Set(d) => {
                        let Some(i) = self.owns_slot(&d.name, file.id) else {
                            continue;
                        };
                        let members = match &d.source {
                            ast::SetSource::Deploy(_) => None,
                            ast::SetSource::Members(items, range) => {
                                if items.is_empty() {
                                    self.report(
                                        Diagnostic::new(
                                            Code::EmptySet,
                                            format!("set `{}` has no members, so `in {}` is never true", d.name.text, d.name.text),
                                            Label::new(file.id, *range, "empty"),
                                        )
                                        .with_help("add its members, or write `from deploy` to supply them when the table is loaded"),
                                    );
                                }
                                let mut members: Vec<String> =
                                    items.iter().map(|m| m.value.clone()).collect();
                                members.sort();
                                members.dedup();
                                Some(members)
                            }
                        };
                        self.model.sets[i as usize].members = members;
                    }
                    ItemKind::Threshold(t) => {
                        let Some(i) = self.owns_slot(&t.name, file.id) else {
                            continue;
                        };
                        let def = &mut self.model.thresholds[i as usize];
                        def.value = literal_value(&t.value);
                        def.value_loc = loc(file.id, t.value.range);
                    }
                    ItemKind::Escalation(e) => {
                        let Some(i) = self.owns_slot(&e.name, file.id) else {
                            continue;
                        };
                        if let Some(second) = e.notify.get(1) {
                            self.report(repeated_clause(
                                file.id,
                                &format!("`{}`", e.name.text),
                                "notify",
                                second.range,
                                None,
                            ));
                        }
                        if let Some(second) = e.timeout.get(1) {
                            self.report(repeated_clause(
                                file.id,
                                &format!("`{}`", e.name.text),
                                "timeout",
                                second.range,
                                None,
                            ));
                        }
                        let def = &mut self.model.routes[i as usize];
                        def.notify = e.notify.first().map(|n| n.value.clone());
                        def.timeout_ms = e.timeout.first().map(|t| t.after_ms);
                        def.timeout_outcome = e.timeout.first().and_then(|t| t.then);
                    }
                    _ => {}
                }
            }
        }
    }

    /// The tier clause (`tier` or `clearance`, exactly one) and the keys of a resource
    /// or sink. A missing or unknown tier is reported and stands in as the lowest.
    fn label(
        &mut self,
        (tiers, keyed): (&[ast::Name], &[ast::Name]),
        file: FileId,
        owner: &ast::Name,
        (clause, what): (&str, &str),
    ) -> (TierId, Vec<KeyId>) {
        let tier = self
            .single(tiers, file, owner, clause, what)
            .cloned()
            .and_then(|t| self.resolve(&t, file, &[NameKind::Tier]));
        (TierId(tier.unwrap_or(0)), self.keys(keyed, file))
    }

    fn keys(&mut self, names: &[ast::Name], file: FileId) -> Vec<KeyId> {
        let mut out = Vec::new();
        for n in names {
            if let Some(k) = self.resolve(n, file, &[NameKind::Key])
                && !out.contains(&KeyId(k))
            {
                out.push(KeyId(k));
            }
        }
        out
    }

    fn tool(&mut self, t: &ast::ToolDecl, file: FileId) -> ToolDef {
        let mut params: Vec<ParamDef> = Vec::new();
        for p in &t.params {
            if let Some(first) = params.iter().find(|q| q.name == p.name.text) {
                let first_range = first.loc.range;
                self.report(
                    Diagnostic::new(
                        Code::DuplicateDefinition,
                        format!(
                            "tool `{}` has two parameters named `{}`",
                            t.name.text, p.name.text
                        ),
                        Label::new(file, p.name.range, "declared again here"),
                    )
                    .with_secondary(Label::new(file, first_range, "first declared here"))
                    .with_help("rename or remove one of them"),
                );
                continue;
            }
            if p.name.text == "confidence" {
                self.report(reserved_parameter(
                    file,
                    p.name.range,
                    "`confidence` is reserved for the confidence the caller reports",
                    "score",
                ));
                continue;
            }
            if p.name.text == "tainted" {
                self.report(reserved_parameter(
                    file,
                    p.name.range,
                    "`tainted` is reserved for whether the session has read untrusted content",
                    "flagged",
                ));
                continue;
            }
            params.push(ParamDef {
                name: p.name.text.clone(),
                ty: p.ty,
                optional: p.optional,
                loc: loc(file, p.range),
            });
        }
        if params.len() > MAX_TOOL_PARAMS {
            self.report(
                Diagnostic::new(
                    Code::InvalidLimit,
                    format!(
                        "tool `{}` declares {} parameters; the most a tool may have is {MAX_TOOL_PARAMS}",
                        t.name.text,
                        params.len()
                    ),
                    Label::new(file, t.name.range, "too many parameters"),
                )
                .with_help("declare only the parameters that rules look at; the rest need not be declared"),
            );
            params.truncate(MAX_TOOL_PARAMS);
        }
        let effects: BTreeSet<ast::Effect> = t.effects.iter().map(|(e, _)| *e).collect();
        let reads = t
            .reads
            .iter()
            .filter_map(|r| self.resolve(r, file, &[NameKind::Resource]).map(ResourceId))
            .collect();
        let writes = t
            .writes
            .iter()
            .filter_map(|s| self.resolve(s, file, &[NameKind::Sink]).map(SinkId))
            .collect();
        ToolDef {
            name: t.name.text.clone(),
            params,
            effects: effects.into_iter().collect(),
            reads,
            writes,
            untrusted: !t.untrusted.is_empty(),
            loc: loc(file, t.name.range),
        }
    }

    /// Every route an `escalate` rule uses must say what happens when nobody answers.
    pub(super) fn check_routes(&mut self) {
        let mut used: Vec<RouteId> = self.model.rules.iter().filter_map(|r| r.route).collect();
        used.sort_unstable();
        used.dedup();
        for route in used {
            let def = &self.model.routes[route.index()];
            let problem = match (def.timeout_ms, def.timeout_outcome) {
                (None, _) => Some("has no `timeout`"),
                (Some(_), None) => Some("has a `timeout` but no `then allow` or `then deny`"),
                _ => None,
            };
            if let Some(problem) = problem {
                let d = Diagnostic::new(
                    Code::RouteWithoutTimeout,
                    format!("escalation route `{}` {problem}, so an unanswered escalation waits forever", def.name),
                    Label::new(def.loc.file, def.loc.range, "no timeout outcome"),
                )
                .with_help(format!("say what happens when nobody answers: `escalation {} {{ notify \"...\" timeout 15m then deny }}`", def.name));
                self.report(d);
            }
        }
    }
}
