//! Resolving `test` blocks: each call's agent, tool, arguments (by name, type-checked
//! against the tool's parameters), confidence and resource labels, and the expectation.

use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::model::*;
use crate::syntax::ast::{self, ExpectKind, ItemKind, LiteralValue};

use super::names::{NameKind, Namespace};
use super::{FileInput, literal_type};

pub fn resolve_tests(
    files: &[FileInput<'_>],
    model: &Model,
    ns: &Namespace,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<TestDef> {
    let mut tests = Vec::new();
    let mut names: Vec<(String, FileId, ast::TextRange)> = Vec::new();
    for file in files.iter().filter(|f| f.module.is_none()) {
        for item in &file.tree.items {
            let ItemKind::Test(t) = &item.kind else {
                continue;
            };
            if let Some((_, f, r)) = names.iter().find(|(n, _, _)| *n == t.name.value) {
                diagnostics.push(
                    Diagnostic::new(
                        Code::DuplicateDefinition,
                        format!("two tests are named \"{}\"", t.name.value),
                        Label::new(file.id, t.name.range, "declared again here"),
                    )
                    .with_secondary(Label::new(*f, *r, "first declared here"))
                    .with_help("give each test its own name, so a failure says which one"),
                );
                continue;
            }
            names.push((t.name.value.clone(), file.id, t.name.range));
            if let Some(test) = resolve_test(t, file.id, item.range, model, ns, diagnostics) {
                tests.push(test);
            }
        }
    }
    tests
}

fn resolve_test(
    t: &ast::TestDecl,
    file: FileId,
    range: ast::TextRange,
    model: &Model,
    ns: &Namespace,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<TestDef> {
    let before = diagnostics.len();
    // A name whose declaration did not parse fails resolution without a diagnostic.
    let mut failed = false;
    let mut steps = Vec::new();
    for step in &t.steps {
        match resolve_step(step, file, model, ns, diagnostics) {
            Some(call) => steps.push(call),
            None => failed = true,
        }
    }
    let expect = match &t.expect.kind {
        ExpectKind::Allow => Expected::Allow,
        ExpectKind::Deny(reason) => Expected::Deny(*reason),
        ExpectKind::Escalate(routes) => {
            let mut ids = Vec::new();
            for r in routes {
                match ns.resolve(r, file, &[NameKind::Route]) {
                    Ok(e) => ids.push(RouteId(e.index)),
                    Err(d) => {
                        failed = true;
                        diagnostics.extend(d.map(|d| *d));
                    }
                }
            }
            Expected::Escalate(ids)
        }
    };
    if failed || diagnostics.len() > before {
        return None;
    }
    Some(TestDef {
        name: t.name.value.clone(),
        steps,
        expect,
        loc: Loc { file, range },
    })
}

fn resolve_step(
    step: &ast::TestStep,
    file: FileId,
    model: &Model,
    ns: &Namespace,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<TestCall> {
    let agent = ns
        .resolve(&step.agent, file, &[NameKind::Agent])
        .map_err(|d| diagnostics.extend(d.map(|d| *d)))
        .ok();
    let tool = ns
        .resolve(&step.tool, file, &[NameKind::Tool])
        .map_err(|d| diagnostics.extend(d.map(|d| *d)))
        .ok();
    let (agent, tool) = (AgentId(agent?.index), ToolId(tool?.index));
    let tool_def = &model.tools[tool.index()];
    let mut args: Vec<Option<Value>> = vec![None; tool_def.params.len()];
    let mut untrusted = Vec::new();
    let mut ok = true;
    for arg in &step.args {
        let Some(index) = tool_def.param(&arg.name.text) else {
            let candidates: Vec<&str> = tool_def.params.iter().map(|p| p.name.as_str()).collect();
            let help = match super::did_you_mean(&arg.name.text, candidates.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if candidates.is_empty() => {
                    format!("tool `{}` takes no arguments", tool_def.name)
                }
                None => format!("tool `{}` takes: {}", tool_def.name, candidates.join(", ")),
            };
            diagnostics.push(
                Diagnostic::new(
                    Code::UnknownArgument,
                    format!(
                        "tool `{}` has no argument `{}`",
                        tool_def.name, arg.name.text
                    ),
                    Label::new(file, arg.name.range, "unknown argument"),
                )
                .with_help(help),
            );
            ok = false;
            continue;
        };
        let param = &tool_def.params[index];
        let ty = literal_type(&arg.value.value);
        if !comparable(ty, param.ty) {
            diagnostics.push(
                Diagnostic::new(
                    Code::TypeMismatch,
                    format!(
                        "argument `{}` of `{}` is `{}`, but this value is `{}`",
                        param.name,
                        tool_def.name,
                        param.ty.keyword(),
                        ty.keyword()
                    ),
                    Label::new(
                        file,
                        arg.value.range,
                        format!("expected `{}`", param.ty.keyword()),
                    ),
                )
                .with_secondary(Label::new(
                    param.loc.file,
                    param.loc.range,
                    "parameter declared here",
                )),
            );
            ok = false;
            continue;
        }
        args[index] = Some(super::literal_value(&arg.value));
        if arg.untrusted.is_some() {
            untrusted.push(index);
        }
    }
    let confidence = match &step.confidence {
        None => None,
        Some(lit) => match lit.value {
            LiteralValue::Number(v) if (0..=1_000_000).contains(&v) => Some(v),
            _ => {
                diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidTest,
                        "confidence is a number between 0 and 1",
                        Label::new(file, lit.range, "out of range"),
                    )
                    .with_help("write e.g. `with confidence 0.6`"),
                );
                ok = false;
                None
            }
        },
    };
    let on = match &step.on {
        None => None,
        Some(r) => {
            let (resource, keys) = data_ref(
                DataKind::Read,
                r,
                tool,
                file,
                model,
                ns,
                diagnostics,
                &mut ok,
            )?;
            Some(TestResource {
                resource: ResourceId(resource),
                keys,
            })
        }
    };
    let into = match &step.into {
        None => None,
        Some(r) => {
            let (sink, keys) = data_ref(
                DataKind::Write,
                r,
                tool,
                file,
                model,
                ns,
                diagnostics,
                &mut ok,
            )?;
            Some(TestSink {
                sink: SinkId(sink),
                keys,
            })
        }
    };
    ok.then_some(TestCall {
        agent,
        tool,
        args,
        confidence,
        on,
        into,
        untrusted,
        loc: Loc {
            file,
            range: step.range,
        },
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DataKind {
    /// `on RESOURCE(...)`: a resource the tool reads.
    Read,
    /// `into SINK(...)`: a sink the tool writes.
    Write,
}

/// Resolves `on RESOURCE(key: "v")` or `into SINK(key: "v")`: the target must exist and
/// be read (written) by the tool, and a text value must be given for exactly the keys it
/// is keyed by. Problems are reported and clear `ok`; `None` when the name is unknown.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per kind; a struct would only rename them"
)]
fn data_ref(
    kind: DataKind,
    r: &ast::ResourceRef,
    tool: ToolId,
    file: FileId,
    model: &Model,
    ns: &Namespace,
    diagnostics: &mut Vec<Diagnostic>,
    ok: &mut bool,
) -> Option<(u32, Vec<(KeyId, String)>)> {
    let name_kind = match kind {
        DataKind::Read => NameKind::Resource,
        DataKind::Write => NameKind::Sink,
    };
    let id = match ns.resolve(&r.resource, file, &[name_kind]) {
        Ok(e) => e.index,
        Err(d) => {
            diagnostics.extend(d.map(|d| *d));
            return None;
        }
    };
    let tool_def = &model.tools[tool.index()];
    let (name, keyed, used_by_tool, (verb, participle, clause)) = match kind {
        DataKind::Read => {
            let def = &model.resources[id as usize];
            let used = tool_def.reads.contains(&ResourceId(id));
            (&def.name, &def.keyed, used, ("read", "read", "reads"))
        }
        DataKind::Write => {
            let def = &model.sinks[id as usize];
            let used = tool_def.writes.contains(&SinkId(id));
            (&def.name, &def.keyed, used, ("write", "written", "writes"))
        }
    };
    let mut keys = Vec::new();
    for k in &r.keys {
        let key = keyed
            .iter()
            .find(|key| model.keys[key.index()].name == k.name.text);
        match (key, &k.value.value) {
            (Some(key), LiteralValue::Text(v)) => keys.push((*key, v.clone())),
            (None, _) => {
                diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidTest,
                        format!("`{name}` is not keyed by `{}`", k.name.text),
                        Label::new(file, k.name.range, "not a key of this data"),
                    )
                    .with_help(format!("`{name}` is keyed by: {}", key_names(model, keyed))),
                );
                *ok = false;
            }
            (Some(_), _) => {
                diagnostics.push(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        "isolation key values are text",
                        Label::new(file, k.value.range, "expected text"),
                    )
                    .with_help(format!("write e.g. `{name}(matter: \"M-1\")`")),
                );
                *ok = false;
            }
        }
    }
    for key in keyed {
        if !keys.iter().any(|(k, _)| k == key) {
            let key_name = &model.keys[key.index()].name;
            diagnostics.push(
                Diagnostic::new(
                    Code::InvalidTest,
                    format!(
                        "`{name}` is keyed by `{key_name}`, but the test gives no value for it"
                    ),
                    Label::new(file, r.resource.range, "missing key"),
                )
                .with_help(format!("write `{name}({key_name}: \"...\")`")),
            );
            *ok = false;
        }
    }
    if !used_by_tool {
        diagnostics.push(
            Diagnostic::new(
                Code::InvalidTest,
                format!("tool `{}` does not {verb} `{name}`", tool_def.name),
                Label::new(
                    file,
                    r.resource.range,
                    format!("not {participle} by this tool"),
                ),
            )
            .with_help(format!(
                "declare `{clause} {name}` on the tool, or name data it {clause}"
            )),
        );
        *ok = false;
    }
    Some((id, keys))
}

fn key_names(model: &Model, keys: &[KeyId]) -> String {
    if keys.is_empty() {
        return "nothing (it is not isolated)".to_string();
    }
    keys.iter()
        .map(|k| format!("`{}`", model.keys[k.index()].name))
        .collect::<Vec<_>>()
        .join(", ")
}
