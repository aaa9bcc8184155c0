//! Semantic analysis: syntax trees in, the resolved `Model` plus diagnostics out.
//!
//! It binds every name (one namespace, user declarations shadowing the standard library),
//! orders the tiers, types conditions, resolves policy tests, and reports the front-end
//! checks: duplicates, unknown names, tier order, types, missing routes / timeouts /
//! owners / expiries, and the like. Pure: no IO, no solver.

mod cond;
mod lifecycle;
mod names;
mod policy_tests;
mod retention;
mod tiers;

use std::collections::BTreeSet;

use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::model::*;
use crate::syntax::ast::{self, AgentMemberKind, ItemKind, Mode, RuleKind, TextRange, TypeName};

pub use cond::literal_value;
pub use names::did_you_mean;
use names::{Declared, Entry, NameKind, Namespace};

/// Most parameters a tool may declare: the decision table keeps a request's arguments in
/// a fixed-size array so `decide` never allocates.
pub const MAX_TOOL_PARAMS: usize = 16;

/// One parsed file handed to analysis.
#[derive(Debug, Clone, Copy)]
pub struct FileInput<'a> {
    pub id: FileId,
    pub tree: &'a ast::SourceFile,
    /// `Some("std.legal")` for a standard-library module, which is included only when
    /// some included file `use`s it.
    pub module: Option<&'a str>,
    /// Whether the file had syntax errors (an empty tree then is not "empty policy").
    pub has_syntax_errors: bool,
}

/// Analyses the user files plus whichever standard-library modules they use.
pub fn analyze(files: &[FileInput<'_>]) -> (Model, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let included = include_modules(files, &mut diagnostics);
    let mut resolver = Resolver {
        model: Model::default(),
        ns: Namespace::default(),
        diagnostics,
    };
    resolver.run(&included);
    (resolver.model, resolver.diagnostics)
}

/// The user files, then every stdlib module reached through `use`, transitively.
fn include_modules<'a>(
    files: &[FileInput<'a>],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<FileInput<'a>> {
    let mut included: Vec<FileInput<'a>> = files
        .iter()
        .filter(|f| f.module.is_none())
        .copied()
        .collect();
    let modules: Vec<&str> = files.iter().filter_map(|f| f.module).collect();
    let mut i = 0;
    while i < included.len() {
        let file = included[i];
        i += 1;
        for item in &file.tree.items {
            let ItemKind::Use(use_decl) = &item.kind else {
                continue;
            };
            let path = use_decl
                .path
                .iter()
                .map(|n| n.text.as_str())
                .collect::<Vec<_>>()
                .join(".");
            match files.iter().find(|f| f.module == Some(path.as_str())) {
                Some(module) => {
                    if !included.iter().any(|f| f.id == module.id) {
                        included.push(*module);
                    }
                }
                None => {
                    let help = match did_you_mean(&path, modules.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "the standard library has: {}; to split your own policy over several files, put them in one directory and check the directory",
                            modules.join(", ")
                        ),
                    };
                    diagnostics.push(
                        Diagnostic::new(
                            Code::UnknownModule,
                            format!("there is no module `{path}`"),
                            Label::new(file.id, use_decl.range, "unknown module"),
                        )
                        .with_help(help),
                    );
                }
            }
        }
    }
    included
}

struct Resolver {
    model: Model,
    ns: Namespace,
    diagnostics: Vec<Diagnostic>,
}

fn loc(file: FileId, range: TextRange) -> Loc {
    Loc { file, range }
}

impl Resolver {
    fn report(&mut self, d: impl Into<Box<Diagnostic>>) {
        self.diagnostics.push(*d.into());
    }

    fn run(&mut self, files: &[FileInput<'_>]) {
        // Standard-library files first, so user declarations shadow them.
        let mut ordered: Vec<FileInput<'_>> = files
            .iter()
            .filter(|f| f.module.is_some())
            .copied()
            .collect();
        ordered.extend(files.iter().filter(|f| f.module.is_none()).copied());

        self.check_headers_and_empty(&ordered);
        self.declare_tiers(&ordered);
        self.declare_simple(&ordered);
        self.resolve_declarations(&ordered);
        self.resolve_agents(&ordered);
        self.resolve_asserts(&ordered);
        self.resolve_retention(&ordered);
        let tests =
            policy_tests::resolve_tests(&ordered, &self.model, &self.ns, &mut self.diagnostics);
        self.model.tests = tests;
        self.check_routes();
    }

    fn check_headers_and_empty(&mut self, files: &[FileInput<'_>]) {
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

    fn declare_tiers(&mut self, files: &[FileInput<'_>]) {
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
    fn declare_simple(&mut self, files: &[FileInput<'_>]) {
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
    fn owns_slot(&self, name: &ast::Name, file: FileId) -> Option<u32> {
        let entry = self.ns.get(&name.text)?;
        (entry.loc == loc(file, name.range)).then_some(entry.index)
    }

    fn resolve(&mut self, name: &ast::Name, file: FileId, kinds: &[NameKind]) -> Option<u32> {
        match self.ns.resolve(name, file, kinds) {
            Ok(e) => Some(e.index),
            Err(d) => {
                self.report(d);
                None
            }
        }
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
            self.report(
                Diagnostic::new(
                    Code::RepeatedMember,
                    format!("`{}` has two `{clause}` clauses", owner.text),
                    Label::new(file, second.range, "second one"),
                )
                .with_secondary(Label::new(file, values[0].range, "first one"))
                .with_help(format!("keep one `{clause}`")),
            );
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

    fn resolve_declarations(&mut self, files: &[FileInput<'_>]) {
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
                            self.report(repeated(file.id, &r.name, "from", second.range));
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
                        self.model.thresholds[i as usize].value = literal_value(&t.value);
                    }
                    ItemKind::Escalation(e) => {
                        let Some(i) = self.owns_slot(&e.name, file.id) else {
                            continue;
                        };
                        if let Some(second) = e.notify.get(1) {
                            self.report(repeated(file.id, &e.name, "notify", second.range));
                        }
                        if let Some(second) = e.timeout.get(1) {
                            self.report(repeated(file.id, &e.name, "timeout", second.range));
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

    /// Types a `when` condition for `target`; `Err` when it has errors (reported).
    fn condition(
        &mut self,
        expr: &ast::Expr,
        target: RuleTarget,
        file: FileId,
    ) -> Result<Cond, ()> {
        let tool = match target {
            RuleTarget::Tool(t) => Some(&self.model.tools[t.index()]),
            RuleTarget::All => None,
        };
        let scope = cond::Scope {
            tool,
            all_tools: &self.model.tools,
            namespace: &self.ns,
            thresholds: &self.model.thresholds,
            sets: &self.model.sets,
            file,
        };
        let mut diags = Vec::new();
        let typed = cond::type_condition(expr, &scope, &mut diags);
        let failed = diags.iter().any(|d| d.is_error());
        self.diagnostics.extend(diags);
        match typed {
            Some(c) if !failed => Ok(c),
            _ => Err(()),
        }
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
                self.report(
                    Diagnostic::new(
                        Code::DuplicateDefinition,
                        "`confidence` is reserved for the confidence the caller reports",
                        Label::new(file, p.name.range, "reserved name"),
                    )
                    .with_help("call the parameter something else, e.g. `score`"),
                );
                continue;
            }
            if p.name.text == "tainted" {
                self.report(
                    Diagnostic::new(
                        Code::DuplicateDefinition,
                        "`tainted` is reserved for whether the session has read untrusted content",
                        Label::new(file, p.name.range, "reserved name"),
                    )
                    .with_help("call the parameter something else, e.g. `flagged`"),
                );
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

    fn resolve_agents(&mut self, files: &[FileInput<'_>]) {
        for file in files {
            for item in &file.tree.items {
                let ItemKind::Agent(a) = &item.kind else {
                    continue;
                };
                let Some(i) = self.owns_slot(&a.name, file.id) else {
                    continue;
                };
                self.agent(AgentId(i), a, file.id);
            }
        }
    }

    fn agent(&mut self, id: AgentId, a: &ast::AgentDecl, file: FileId) {
        let mut seen: Vec<(&'static str, TextRange)> = Vec::new();
        let mut once = |this: &mut Self, clause: &'static str, range: TextRange| {
            if let Some((_, first)) = seen.iter().find(|(c, _)| *c == clause) {
                this.report(
                    Diagnostic::new(
                        Code::RepeatedMember,
                        format!("agent `{}` has two `{clause}` clauses", a.name.text),
                        Label::new(file, range, "second one"),
                    )
                    .with_secondary(Label::new(file, *first, "first one"))
                    .with_help(format!("keep one `{clause}`")),
                );
                false
            } else {
                seen.push((clause, range));
                true
            }
        };
        let mut rules = Vec::new();
        let mut pending_autonomy = Vec::new();
        let mut lifecycle = lifecycle::Clauses::default();
        for member in &a.members {
            match &member.kind {
                AgentMemberKind::Owner(s) => {
                    if once(self, "owner", member.range) {
                        self.model.agents[id.index()].owner = Some(s.value.clone());
                    }
                }
                AgentMemberKind::Purpose(s) => {
                    if once(self, "purpose", member.range) {
                        self.model.agents[id.index()].purpose = Some(s.value.clone());
                    }
                }
                AgentMemberKind::MaxTier(t) => {
                    if once(self, "max tier", member.range)
                        && let Some(tier) = self.resolve(t, file, &[NameKind::Tier])
                    {
                        self.model.agents[id.index()].max_tier = Some(TierId(tier));
                        if self.model.tiers.len() > 1 && tier as usize + 1 == self.model.tiers.len()
                        {
                            self.report(
                                Diagnostic::new(
                                    Code::MaxTierIsTop,
                                    format!("`{}` is the highest tier, so this ceiling restricts nothing", t.text),
                                    Label::new(file, t.range, "the top tier"),
                                )
                                .with_help("name the highest tier the agent really needs, or remove the line to make the absence of a ceiling explicit"),
                            );
                        }
                    }
                }
                AgentMemberKind::Mode(m) => {
                    if once(self, "mode", member.range) {
                        self.model.agents[id.index()].mode = *m;
                        lifecycle.mode = Some(member.range);
                    }
                }
                AgentMemberKind::Stage(st) => {
                    if once(self, "stage", member.range) {
                        lifecycle.stage = Some((st, member.range));
                    }
                }
                AgentMemberKind::Promote(p) => lifecycle.promotes.push((p, member.range)),
                AgentMemberKind::Rule(r) => {
                    if let Some(rule) = self.rule(id, r, file, member.range) {
                        rules.push(rule);
                    }
                }
                AgentMemberKind::Autonomy(au) => pending_autonomy.push((au, member.range)),
                AgentMemberKind::Limit(specs) => {
                    for spec in specs {
                        self.limit(id, spec, file);
                    }
                }
                AgentMemberKind::Breaker(b) => self.breaker(id, b, file, member.range),
                AgentMemberKind::Credential(c) => {
                    if c.expires_ms.is_none() {
                        self.report(
                            Diagnostic::new(
                                Code::CredentialWithoutExpiry,
                                format!("credential `{}` never expires", c.name.text),
                                Label::new(file, member.range, "no `expires`"),
                            )
                            .with_help(format!(
                                "give it a lifetime: `credential {} expires 1h`",
                                c.name.text
                            )),
                        );
                    }
                    self.model.agents[id.index()]
                        .credentials
                        .push(CredentialDef {
                            name: c.name.text.clone(),
                            expires_ms: c.expires_ms,
                            loc: loc(file, member.range),
                        });
                }
            }
        }
        if self.model.agents[id.index()].owner.is_none() {
            self.report(
                Diagnostic::new(
                    Code::AgentWithoutOwner,
                    format!("agent `{}` has no owner", a.name.text),
                    Label::new(file, a.name.range, "who answers for its actions?"),
                )
                .with_help("add `owner \"team@example.com\"`: the person or team accountable for the agent's outputs"),
            );
        }
        self.model.agents[id.index()].rules = rules;
        self.lifecycle(id, a, &lifecycle, file);
        for (au, range) in pending_autonomy {
            self.autonomy(id, au, file, range);
        }
        self.check_ungranted_denies(id, file);
    }

    fn rule(
        &mut self,
        agent: AgentId,
        r: &ast::RuleDecl,
        file: FileId,
        range: TextRange,
    ) -> Option<RuleId> {
        let target = match &r.target {
            ast::Target::All(_) => Some(RuleTarget::All),
            ast::Target::Tool(n) => self
                .resolve(n, file, &[NameKind::Tool])
                .map(|t| RuleTarget::Tool(ToolId(t))),
        };
        let route = match (&r.route, r.kind) {
            (Some(route), RuleKind::Escalate) => {
                self.resolve(route, file, &[NameKind::Route]).map(RouteId)
            }
            (Some(route), _) => {
                self.report(
                    Diagnostic::new(
                        Code::RouteOnNonEscalate,
                        format!(
                            "only `escalate` rules have a route; this is `{}`",
                            r.kind.keyword()
                        ),
                        Label::new(file, route.range, "route here"),
                    )
                    .with_help(format!(
                        "remove `to {}`, or make the rule `escalate`",
                        route.text
                    )),
                );
                None
            }
            (None, RuleKind::Escalate) => {
                self.report(
                    Diagnostic::new(
                        Code::EscalateWithoutRoute,
                        "this `escalate` rule does not say who decides",
                        Label::new(file, range, "no `to ROUTE`"),
                    )
                    .with_help("add `to ROUTE`, naming an `escalation` that says whom to notify and what happens on timeout"),
                );
                None
            }
            (None, _) => None,
        };
        let target = target?;
        let condition = match &r.condition {
            None => None,
            Some(expr) => Some(self.condition(expr, target, file).ok()?),
        };
        if r.kind == RuleKind::Escalate && route.is_none() {
            return None;
        }
        let id = RuleId(self.model.rules.len() as u32);
        self.model.rules.push(RuleDef {
            id,
            agent,
            kind: r.kind,
            target,
            route,
            condition,
            loc: loc(file, range),
        });
        Some(id)
    }

    fn autonomy(&mut self, agent: AgentId, au: &ast::AutonomyDecl, file: FileId, range: TextRange) {
        let Some(tool) = self.resolve(&au.tool, file, &[NameKind::Tool]).map(ToolId) else {
            return;
        };
        let typed = self
            .condition(&au.condition, RuleTarget::Tool(tool), file)
            .ok();
        if let Some(condition) = typed {
            self.model.agents[agent.index()].autonomy.push(AutonomyDef {
                tool,
                condition,
                because: au.because.value.clone(),
                loc: loc(file, range),
            });
        }
    }

    fn limit(&mut self, agent: AgentId, spec: &ast::LimitSpec, file: FileId) {
        if spec.count <= 0 {
            self.report(
                Diagnostic::new(
                    Code::InvalidLimit,
                    "a limit of zero allows nothing at all",
                    Label::new(file, spec.range, "zero"),
                )
                .with_help(
                    "to stop an agent, remove its grants or suspend it; a limit must be at least 1",
                ),
            );
            return;
        }
        let existing = self.model.agents[agent.index()]
            .limits
            .iter()
            .find(|l| l.unit == spec.unit && l.window == spec.window)
            .map(|l| l.loc.range);
        if let Some(first) = existing {
            self.report(
                Diagnostic::new(
                    Code::RepeatedMember,
                    "the same limit is given twice",
                    Label::new(file, spec.range, "second one"),
                )
                .with_secondary(Label::new(file, first, "first one"))
                .with_help(
                    "keep one; if you meant a different window, use `per task`, `per minute`, ...",
                ),
            );
            return;
        }
        self.model.agents[agent.index()].limits.push(LimitDef {
            count: spec.count as u64,
            unit: spec.unit,
            window: spec.window,
            loc: loc(file, spec.range),
        });
    }

    fn breaker(&mut self, agent: AgentId, b: &ast::BreakerDecl, file: FileId, range: TextRange) {
        use ast::{BreakerMetric, LiteralValue};
        let value = match (&b.value.value, b.metric) {
            (LiteralValue::Percent(p), BreakerMetric::ErrorRate) if *p <= 1_000_000 => Some(*p),
            (LiteralValue::Number(n), BreakerMetric::ErrorRate) if *n <= 1_000_000 => Some(*n),
            (LiteralValue::Number(n), _) if n % 1_000_000 == 0 => Some(n / 1_000_000),
            _ => None,
        };
        let Some(value) = value else {
            let help = if b.metric == BreakerMetric::ErrorRate {
                "an error rate is a percentage between 0% and 100%: `breaker error_rate > 20% over 5m then suspend`"
            } else {
                "a count is a whole number: `breaker calls > 500 over 1m then suspend`"
            };
            self.report(
                Diagnostic::new(
                    Code::InvalidLimit,
                    "this breaker threshold is out of range or of the wrong kind",
                    Label::new(file, b.value.range, "invalid threshold"),
                )
                .with_help(help),
            );
            return;
        };
        if b.window_ms <= 0 {
            self.report(
                Diagnostic::new(
                    Code::InvalidLimit,
                    "a breaker window must be longer than zero",
                    Label::new(file, range, "zero window"),
                )
                .with_help("use a window such as `over 5m`"),
            );
            return;
        }
        self.model.agents[agent.index()].breakers.push(BreakerDef {
            metric: b.metric,
            op: b.op,
            value,
            window_ms: b.window_ms,
            scope: b.scope,
            loc: loc(file, range),
        });
    }

    fn check_ungranted_denies(&mut self, agent: AgentId, file: FileId) {
        let rules = self.model.agents[agent.index()].rules.clone();
        for r in rules {
            let rule = &self.model.rules[r.index()];
            if rule.kind != RuleKind::Deny {
                continue;
            }
            let RuleTarget::Tool(tool) = rule.target else {
                continue;
            };
            if !self.model.grants(agent, tool) {
                let tool_name = self.model.tools[tool.index()].name.clone();
                let agent_name = self.model.agents[agent.index()].name.clone();
                let range = rule.loc.range;
                self.report(
                    Diagnostic::new(
                        Code::UngrantedDeny,
                        format!("agent `{agent_name}` is never granted `{tool_name}`, so this `deny` never decides anything"),
                        Label::new(file, range, "has no effect"),
                    )
                    .with_help(format!("calls to `{tool_name}` are already denied (default deny); remove the rule, or grant the tool with `allow` or `escalate` if that was intended")),
                );
            }
        }
    }

    fn resolve_asserts(&mut self, files: &[FileInput<'_>]) {
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

    /// Every route an `escalate` rule uses must say what happens when nobody answers.
    fn check_routes(&mut self) {
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

fn repeated(file: FileId, owner: &ast::Name, clause: &str, range: TextRange) -> Diagnostic {
    Diagnostic::new(
        Code::RepeatedMember,
        format!("`{}` has two `{clause}` clauses", owner.text),
        Label::new(file, range, "second one"),
    )
    .with_help(format!("keep one `{clause}`"))
}

/// The types a literal can be checked against, for tests.
pub fn literal_type(value: &ast::LiteralValue) -> TypeName {
    match value {
        ast::LiteralValue::Money(_) => TypeName::Money,
        ast::LiteralValue::Number(_) => TypeName::Number,
        ast::LiteralValue::Percent(_) => TypeName::Percent,
        ast::LiteralValue::Duration(_) => TypeName::Duration,
        ast::LiteralValue::Text(_) => TypeName::Text,
        ast::LiteralValue::Bool(_) => TypeName::Bool,
        ast::LiteralValue::TextList(_) => TypeName::TextList,
    }
}
