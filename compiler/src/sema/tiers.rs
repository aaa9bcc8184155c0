//! The tier order: every `tiers a < b < c` statement adds edges to one graph, which must
//! be a single linear order (a chain) so that "higher than" is defined for every pair of
//! tiers. Cycles and incomparable tiers are errors.

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;

use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::syntax::ast::Name;

/// One tier mention in a `tiers` statement.
#[derive(Debug, Clone)]
pub struct TierMention {
    pub name: Name,
    pub file: FileId,
}

/// Orders the tiers. Returns the names lowest first, and diagnostics for cycles and
/// incomparable pairs (in which case the order returned is a best effort: declaration
/// order, so later phases still have ids for every tier).
pub fn order_tiers(chains: &[Vec<TierMention>]) -> (Vec<TierMention>, Vec<Diagnostic>) {
    let mut first_mention: Vec<TierMention> = Vec::new();
    let mut index_of = std::collections::HashMap::<String, usize>::new();
    let mut graph = DiGraphMap::<usize, ()>::new();
    for chain in chains {
        for mention in chain {
            let next = first_mention.len();
            let i = *index_of.entry(mention.name.text.clone()).or_insert(next);
            if i == next {
                first_mention.push(mention.clone());
            }
            graph.add_node(i);
        }
        for pair in chain.windows(2) {
            let a = index_of[&pair[0].name.text];
            let b = index_of[&pair[1].name.text];
            graph.add_edge(a, b, ());
        }
    }

    let mut diagnostics = Vec::new();
    for component in tarjan_scc(&graph) {
        let self_loop = component.len() == 1 && graph.contains_edge(component[0], component[0]);
        if component.len() > 1 || self_loop {
            let mut names: Vec<usize> = component.clone();
            names.sort_unstable();
            let first = &first_mention[names[0]];
            let cycle = names
                .iter()
                .map(|i| format!("`{}`", first_mention[*i].name.text))
                .collect::<Vec<_>>()
                .join(", ");
            let mut d = Diagnostic::new(
                Code::CyclicTiers,
                format!("the tier order is cyclic: {cycle} are each below another"),
                Label::new(first.file, first.name.range, "part of the cycle"),
            )
            .with_help("a tier order must run one way: list each tier once, lowest first");
            for i in names.iter().skip(1) {
                let m = &first_mention[*i];
                d = d.with_secondary(Label::new(m.file, m.name.range, "also in the cycle"));
            }
            diagnostics.push(d);
        }
    }
    if !diagnostics.is_empty() {
        return (first_mention, diagnostics);
    }

    // Acyclic: Kahn's algorithm; a linear order has exactly one ready tier at each step.
    let mut indegree: Vec<usize> = (0..first_mention.len())
        .map(|n| {
            graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: Vec<usize> = (0..first_mention.len())
        .filter(|n| indegree[*n] == 0)
        .collect();
    let mut order = Vec::new();
    let mut reported = false;
    while !ready.is_empty() {
        ready.sort_unstable();
        if ready.len() > 1 && !reported {
            reported = true;
            let a = &first_mention[ready[0]];
            let b = &first_mention[ready[1]];
            diagnostics.push(
                Diagnostic::new(
                    Code::NonLinearTiers,
                    format!(
                        "tiers `{}` and `{}` are not ordered against each other",
                        a.name.text, b.name.text
                    ),
                    Label::new(a.file, a.name.range, "neither above nor below"),
                )
                .with_secondary(Label::new(b.file, b.name.range, "this tier"))
                .with_help(format!(
                    "say which is higher in one chain, e.g. `tiers {} < {}`",
                    a.name.text, b.name.text
                )),
            );
        }
        let n = ready.remove(0);
        order.push(n);
        for m in graph
            .neighbors_directed(n, petgraph::Direction::Outgoing)
            .collect::<Vec<_>>()
        {
            indegree[m] -= 1;
            if indegree[m] == 0 {
                ready.push(m);
            }
        }
    }
    if reported {
        return (first_mention, diagnostics);
    }
    let ordered = order
        .into_iter()
        .map(|i| first_mention[i].clone())
        .collect();
    (ordered, diagnostics)
}
