//! The application's layering, read from its sources: the commands (`src/commands/`) are
//! imported by nothing but the dispatch (`main.rs`, `cli.rs`), and the top-level modules of
//! `src/` import each other without a cycle.
//!
//! The graph has an edge `a -> b` when a file of top-level module `a` (`src/a.rs` or
//! `src/a/**`) names `crate::b` (also inside `crate::{b, ...}`), or `codex::b` (the
//! library half of the package: `sandbox`, `tools`). Comments are left out, so a doc
//! that mentions another module is no edge. A failure names the cycle and, for each edge
//! of it, the first file and line that makes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The files allowed to import `commands::`: the command-line dispatch.
const DISPATCH: [&str; 2] = ["main", "cli"];

/// The crate roots: not modules of their own.
const ROOTS: [&str; 2] = ["main", "lib"];

/// For each (from, to) edge between top-level modules, where it was first seen.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

#[test]
fn nothing_but_the_dispatch_imports_the_commands() {
    let graph = module_graph(&src());
    let offenders: Vec<String> = graph
        .iter()
        .filter(|(from, _)| !DISPATCH.contains(&from.as_str()) && from.as_str() != "commands")
        .filter_map(|(from, to)| to.get("commands").map(|at| format!("{from} ({at})")))
        .collect();
    assert!(
        offenders.is_empty(),
        "only main.rs and cli.rs may import `commands::`; move what is shared to \
         `assembly` (or a domain module). Imported by: {}",
        offenders.join(", ")
    );
}

#[test]
fn the_top_level_modules_of_the_application_form_no_import_cycle() {
    let graph = module_graph(&src());
    assert!(
        graph.len() > 10,
        "the graph is suspiciously small, is src/ read? {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        let edges: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("  {} -> {}   ({})", w[0], w[1], graph[&w[0]][&w[1]]))
            .collect();
        panic!(
            "import cycle between the top-level modules of src/: {}\n{}",
            cycle.join(" -> "),
            edges.join("\n")
        );
    }
}

#[test]
fn a_cycle_is_found_and_named() {
    let mut graph = Graph::new();
    for (a, b) in [("x", "y"), ("y", "z"), ("z", "x"), ("w", "x")] {
        graph
            .entry(a.into())
            .or_default()
            .insert(b.into(), "f.rs:1".into());
    }
    let cycle = find_cycle(&graph).expect("x -> y -> z -> x is a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    graph.get_mut("z").unwrap().remove("x");
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn references_are_read_from_paths_and_grouped_imports_but_not_comments() {
    let text = "use crate::{alpha::A, beta, gamma::{self, G}};\n\
                // crate::delta is only mentioned\n\
                /// see [`crate::epsilon`]\n\
                let x = crate::zeta::f(codex::eta::g());\n";
    let mut found: Vec<String> = references(text).into_iter().map(|(m, _)| m).collect();
    found.sort();
    assert_eq!(found, ["alpha", "beta", "eta", "gamma", "zeta"]);
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The import graph between the top-level modules of `src`.
fn module_graph(src: &Path) -> Graph {
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.strip_suffix(".rs").unwrap_or(&top).to_owned();
        modules.entry(top).or_default().push(file);
    }
    let mut graph = Graph::new();
    for (module, files) in &modules {
        graph.entry(module.clone()).or_default();
        for file in files {
            let text = std::fs::read_to_string(file).unwrap();
            for (target, line) in references(&text) {
                let known = modules.contains_key(&target) && !ROOTS.contains(&target.as_str());
                if known && target != *module {
                    let at = format!("{}:{line}", file.strip_prefix(src).unwrap().display());
                    graph.get_mut(module).unwrap().entry(target).or_insert(at);
                }
            }
        }
    }
    for root in ROOTS {
        if !DISPATCH.contains(&root) {
            graph.remove(root);
        }
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The top-level modules `text` names as `crate::m` or `codex::m`, with the line of each.
fn references(text: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for prefix in ["crate::", "codex::"] {
            let mut rest = code;
            while let Some(at) = rest.find(prefix) {
                let before = rest[..at].chars().next_back();
                rest = &rest[at + prefix.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue; // `my_crate::`, `codex_actors::`... is another crate
                }
                for name in first_segments(rest) {
                    found.push((name, n + 1));
                }
            }
        }
    }
    found
}

/// The first path segment after `crate::`: one name, or each name of a `{...}` group.
fn first_segments(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let mut names = Vec::new();
    let mut depth = 0;
    let mut start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            _ if start && !c.is_whitespace() => {
                names.push(ident(&group[i..]));
                start = false;
            }
            _ => {}
        }
    }
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

/// A cycle of `graph` as a path that ends where it starts, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_owned(), Mark::Visiting);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            match marks.get(next) {
                Some(Mark::Visiting) => {
                    let from = path.iter().position(|p| p == next).unwrap();
                    let mut cycle = path[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(c) = visit(next, graph, marks, path) {
                        return Some(c);
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
            if let Some(c) = visit(node, graph, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}
