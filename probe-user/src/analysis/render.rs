//! A report for people: markdown (the verdict, the reasons, each deadlock as jstack prints
//! one, the lints with their commands) and Graphviz dot (the wait-for graph, the cycles in
//! red).
//!
//! Reads a finished [`Report`]; decides nothing.

use super::report::{EdgeKind, Report};
use latch_probe_common::doc::EntryRef;
use std::fmt::Write as _;

pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Verdict: {} (exit {})\n",
        serde_json::to_value(report.verdict)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        report.exit_code
    );
    for reason in &report.reasons {
        let _ = writeln!(out, "- {reason}");
    }
    let c = &report.counts;
    let _ = writeln!(
        out,
        "\nDaemon pid {}, generation {}{}: {} lockers, {} holders, {} waiting, {} incubating, {} parties.",
        report.pid,
        report.generation,
        if report.torn { " (torn)" } else { "" },
        c.lockers,
        c.holders,
        c.waiting,
        c.incubating,
        c.parties
    );
    for (i, d) in report.deadlocks.iter().enumerate() {
        let _ = writeln!(out, "\n## Deadlock {}: {} parties\n", i + 1, d.steps.len());
        for s in &d.steps {
            let command = s
                .command
                .as_deref()
                .map(|c| format!(" `{c}`"))
                .unwrap_or_default();
            let holds: Vec<String> = s.holds.iter().map(entry).collect();
            let _ = writeln!(
                out,
                "- **{}**{command}\n  - holds {}\n  - waits for {}\n  - held by **{}**: {}",
                s.party,
                if holds.is_empty() {
                    "nothing".into()
                } else {
                    holds.join(", ")
                },
                entry(&s.waits),
                s.held_by,
                entry(&s.held),
            );
        }
    }
    if !report.behind_deadlock.is_empty() {
        let _ = writeln!(
            out,
            "\nWaiting behind a deadlock: {}.",
            report.behind_deadlock.join(", ")
        );
    }
    if !report.lints.is_empty() {
        let _ = writeln!(out, "\n## Findings\n");
        for lint in &report.lints {
            let _ = writeln!(out, "- {}  ", lint.message);
            // Who the party is, by its command line, when it is known.
            let party = lint
                .party
                .as_deref()
                .and_then(|name| report.parties.iter().find(|p| p.name == name));
            if let Some((name, command)) = party.and_then(|p| Some((&p.name, p.command.as_ref()?)))
            {
                let _ = writeln!(out, "  {name}: `{command}`  ");
            }
            let _ = writeln!(out, "  `{}`", lint.action);
        }
    }
    out
}

/// `A (locker 3, conn 2, EX, since 1732223000.123456789)`
fn entry(e: &EntryRef) -> String {
    let mut s = format!("{} (locker {}, conn {}", e.resource_name, e.locker, e.conn);
    if let Some(m) = e.lock_mode {
        let _ = write!(s, ", {}", m.short_name());
    }
    if let Some(q) = e.quantity {
        let _ = write!(s, ", quantity {q}");
    }
    let _ = write!(
        s,
        ", since {}.{:09})",
        e.since_ns / 1_000_000_000,
        e.since_ns % 1_000_000_000
    );
    s
}

pub fn dot(report: &Report) -> String {
    let mut out = String::from("digraph wait_for {\n  rankdir=LR;\n  node [shape=box];\n");
    let in_cycle: std::collections::BTreeSet<&str> = report
        .deadlocks
        .iter()
        .flat_map(|d| d.parties.iter().map(String::as_str))
        .collect();
    for p in &report.parties {
        let label = match &p.command {
            Some(c) => format!("{}\\n{}", p.name, escape(&truncate(c, 60))),
            None => p.name.clone(),
        };
        let style = if in_cycle.contains(p.name.as_str()) {
            ", color=red, penwidth=2"
        } else {
            ""
        };
        let _ = writeln!(out, "  \"{}\" [label=\"{label}\"{style}];", escape(&p.name));
    }
    for e in &report.graph {
        let style = match (e.kind, e.cycle) {
            (_, true) => " [color=red, penwidth=2]",
            (EdgeKind::Soft, false) => " [style=dashed]",
            (EdgeKind::Hard, false) => "",
        };
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\"{style};",
            escape(&e.from),
            escape(&e.to)
        );
    }
    out.push_str("}\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}
