//! The layering docs/architecture.md draws, checked: which crate may depend on which
//! (from `cargo metadata`), that no crate's top-level modules import each other in a
//! circle, and that the generic and library layers keep out what belongs above them
//! (dwarfpeek no latch name, the daemon's library no clap).
//!
//! Reads the workspace's manifests and sources; runs nothing but `cargo metadata`.

use latch_tests::bins::workspace_root;
use latch_tests::command::TestCommand;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every workspace crate a package depends on, directly or not (normal and build
/// dependencies: what its code can use).
fn workspace_dependencies(package: &str) -> BTreeSet<String> {
    // This machine's platform only: the others' crates may not have been fetched.
    let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let metadata: Value = TestCommand::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
        ])
        .arg(&host)
        .current_dir(workspace_root())
        .expect_json();
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let nodes = metadata["resolve"]["nodes"].as_array().expect("resolve");
    let name_of: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let deps_of = |id: &str| -> Vec<String> {
        let node = nodes
            .iter()
            .find(|n| n["id"] == id)
            .expect("a resolved node");
        node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"] != "dev")
            })
            .map(|d| d["pkg"].as_str().unwrap().to_owned())
            .collect()
    };
    let root = name_of
        .iter()
        .find(|(_, name)| **name == package)
        .map(|(id, _)| *id)
        .expect("the package in the workspace");
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(id) = todo.pop() {
        for dep in deps_of(&id) {
            if seen.insert(dep.clone()) {
                todo.push(dep);
            }
        }
    }
    seen.iter()
        .filter(|id| members.contains(id.as_str()))
        .map(|id| name_of[id.as_str()].to_owned())
        .collect()
}

#[test]
fn each_crate_depends_only_on_the_layers_below_it() {
    let expect = |package: &str, allowed: &[&str]| {
        let deps = workspace_dependencies(package);
        let allowed: BTreeSet<String> = allowed.iter().map(|s| s.to_string()).collect();
        assert!(
            deps.is_subset(&allowed),
            "{package} depends on {deps:?}; docs/architecture.md allows only {allowed:?}"
        );
    };
    expect("dwarfpeek", &[]);
    expect("latch-probe-common", &[]);
    expect("latch", &["latch-probe-common"]);
    expect("latch-probe", &["dwarfpeek", "latch-probe-common"]);
}

/// The `.rs` files under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A file's code without its comments and its `#[cfg(test)]` module (which may reach
/// anywhere in its crate).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("a source file");
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module a source file belongs to (`src/merge/state.rs` → `merge`).
fn top_module(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("a file under src");
    let first = relative.components().next().expect("a path");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

/// Which top-level modules each top-level module of the crate at `src` names, through
/// `crate::` or, from the binary's side, through the crate's own name.
fn module_graph(src: &Path, crate_name: &str) -> BTreeMap<String, BTreeSet<String>> {
    let prefixes = ["crate::".to_owned(), format!("{crate_name}::")];
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in sources(src) {
        let from = top_module(src, &file);
        let code = code(&file);
        for prefix in &prefixes {
            for (at, _) in code.match_indices(prefix.as_str()) {
                let before = code[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = &code[at + prefix.len()..];
                let to: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !to.is_empty() && to != from {
                    graph.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    graph
}

/// A circle in `graph`, if it has one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnPath,
        Done,
    }
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_owned(), Mark::OnPath);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next) {
                Some(Mark::OnPath) => {
                    let start = path.iter().position(|n| n == next).unwrap();
                    let mut found = path[start..].to_vec();
                    found.push(next.clone());
                    return Some(found);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(found) = visit(graph, next, marks, path) {
                        return Some(found);
                    }
                }
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if !marks.contains_key(node) {
            if let Some(found) = visit(graph, node, &mut marks, &mut Vec::new()) {
                return Some(found);
            }
        }
    }
    None
}

#[test]
fn no_crate_has_modules_importing_each_other_in_a_circle() {
    let root = workspace_root();
    for (dir, name) in [
        ("daemon", "latch"),
        ("probe-common", "latch_probe_common"),
        ("dwarfpeek", "dwarfpeek"),
        ("probe-user", "latch_probe"),
        ("tests", "latch_tests"),
    ] {
        let graph = module_graph(&root.join(dir).join("src"), name);
        assert!(
            !graph.is_empty() || dir == "probe-common",
            "{dir}: no imports seen"
        );
        if let Some(found) = circle(&graph) {
            panic!(
                "{dir}: modules import each other in a circle: {}",
                found.join(" -> ")
            );
        }
    }
}

#[test]
fn the_circle_check_sees_a_circle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    let found = circle(&graph).expect("a circle");
    assert_eq!(found.first(), found.last());
    assert_eq!(found.len(), 4, "{found:?}");
}

#[test]
fn dwarfpeek_names_no_latch_thing() {
    let root = workspace_root().join("dwarfpeek");
    let mut files = sources(&root.join("src"));
    files.push(root.join("Cargo.toml"));
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a source file");
        for (n, line) in text.lines().enumerate() {
            assert!(
                !line.to_lowercase().contains("latch") && !line.contains("LOCK_TABLE"),
                "{}:{}: dwarfpeek is generic, yet says {line:?}",
                file.display(),
                n + 1
            );
        }
    }
}

#[test]
fn the_daemons_library_takes_no_clap_type() {
    let src = workspace_root().join("daemon").join("src");
    for file in sources(&src) {
        let top = top_module(&src, &file);
        if top == "cli" || top == "main" {
            continue;
        }
        assert!(
            !code(&file).contains("clap"),
            "{}: the command line is the binary's (src/cli/); the library takes plain values",
            file.display()
        );
    }
}
