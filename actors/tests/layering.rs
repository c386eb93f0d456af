//! The engine's layers, checked from its source: every module under `actors/src` is placed
//! in one layer, and its `crate::…`, `super::…` and `self::…` references may only point the
//! allowed way:
//!
//! ```text
//! vocabulary  ←  protocol  ←  actors  ←  supervisor
//! ```
//!
//! - **vocabulary** (data and pure logic) references only the vocabulary;
//! - **protocol** (what actors say: messages, narrow handles, the services' client)
//!   references the vocabulary and the protocol;
//! - an **actor** references the vocabulary and the protocol, never another actor (its own
//!   submodules are itself);
//! - the **supervisor** (and `run.rs`, which starts it) may reference anything, and is the
//!   only place that spawns actors.
//!
//! A file that is not in [`MODULES`] fails the test: a new module must be placed.
//!
//! References are read from the code with comments and string literals removed (doc links
//! are not dependencies), with `use` groups (`crate::a::{b, c::d}`) expanded and `super`
//! resolved against the file's module and the inline modules (`mod tests { … }`) around it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Vocabulary,
    Protocol,
    Actor,
    Supervisor,
    /// `lib.rs`: the crate's facade (module declarations and re-exports).
    Root,
}

use Layer::*;

/// Every module of the engine, by module path, and its layer. Paths that are not files
/// (`services`, a re-export shim declared in `lib.rs`) place what is reached through them.
const MODULES: &[(&str, Layer)] = &[
    ("", Root),
    // Vocabulary: data and pure logic.
    ("identity", Vocabulary),
    ("model", Vocabulary),
    ("report", Vocabulary),
    ("spec", Vocabulary),
    ("plan", Vocabulary),
    ("restart", Vocabulary),
    ("context", Vocabulary),
    ("context::tests", Vocabulary),
    ("checkpoint", Vocabulary),
    ("limits", Vocabulary),
    ("tool", Vocabulary),
    ("delegate", Vocabulary),
    ("budget", Vocabulary),
    ("budget::ledger", Vocabulary),
    ("budget::ledger::tests", Vocabulary),
    ("budget::charge", Vocabulary),
    ("policy", Vocabulary),
    ("policy::rules", Vocabulary),
    ("policy::protected", Vocabulary),
    ("audit", Vocabulary),
    ("audit::event", Vocabulary),
    ("audit::chain", Vocabulary),
    ("audit::redact", Vocabulary),
    ("audit::log", Vocabulary),
    ("audit::anchor", Vocabulary),
    ("replies", Vocabulary),
    ("replies::tests", Vocabulary),
    // Protocol: what actors say to each other.
    ("protocol", Protocol),
    ("protocol::agent", Protocol),
    ("protocol::audit", Protocol),
    ("protocol::budget", Protocol),
    ("protocol::policy", Protocol),
    ("protocol::port", Protocol),
    ("protocol::run", Protocol),
    ("protocol::services", Protocol),
    ("protocol::remote", Protocol),
    ("services", Protocol),
    // Actors: each imports protocol and vocabulary, never another actor.
    ("agent", Actor),
    ("agent::compaction", Actor),
    ("external", Actor),
    ("remote_attempt", Actor),
    ("budget::actor", Actor),
    ("audit::actor", Actor),
    ("policy::actor", Actor),
    // The supervisor: spawns and wires the actors.
    ("supervisor", Supervisor),
    ("supervisor::attempts", Supervisor),
    ("supervisor::background", Supervisor),
    ("supervisor::children", Supervisor),
    ("supervisor::delegation", Supervisor),
    ("supervisor::queue", Supervisor),
    ("supervisor::services", Supervisor),
    ("supervisor::slots", Supervisor),
    ("run", Supervisor),
    ("hosted", Supervisor),
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `audit/mod.rs` → `audit`; `budget/ledger/tests.rs` → `budget::ledger::tests`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The module's entry in [`MODULES`]: the longest one that is a prefix of `path`.
fn place(path: &[String]) -> Option<(&'static str, Layer)> {
    MODULES
        .iter()
        .filter(|(m, _)| {
            let m: Vec<&str> = m.split("::").filter(|s| !s.is_empty()).collect();
            m.len() <= path.len() && m.iter().zip(path).all(|(a, b)| a == b)
        })
        .max_by_key(|(m, _)| m.len())
        .copied()
}

/// The code of a Rust file with comments, string literals and char literals blanked out.
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if (c == 'r' || c == 'b') && is_raw_string(&b, i) {
            i = skip_raw_string(&b, i);
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && next == Some('\\') {
            i += 2;
            while i < b.len() && b[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else if c == '\'' && b.get(i + 2) == Some(&'\'') {
            i += 3;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_raw_string(b: &[char], i: usize) -> bool {
    if i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_') {
        return false;
    }
    let mut j = i + 1;
    if b[i] == 'b' {
        if b.get(j) != Some(&'r') {
            return false;
        }
        j += 1;
    }
    while b.get(j) == Some(&'#') {
        j += 1;
    }
    b.get(j) == Some(&'"')
}

fn skip_raw_string(b: &[char], mut i: usize) -> usize {
    while b[i] != '#' && b[i] != '"' {
        i += 1;
    }
    let mut hashes = 0;
    while b[i] == '#' {
        hashes += 1;
        i += 1;
    }
    i += 1; // the opening quote
    loop {
        if b[i] == '"' && (1..=hashes).all(|k| b.get(i + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        i += 1;
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Parses a use tree at `s[i..]` (after a leading `crate::`/`super::`/`self::`), appending
/// each expanded path (relative to that leading keyword) to `out`; returns where it ended.
fn use_tree(s: &[char], mut i: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix.to_vec();
    loop {
        while s.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        match s.get(i) {
            Some('{') => {
                i += 1;
                loop {
                    while s.get(i).is_some_and(|c| c.is_whitespace() || *c == ',') {
                        i += 1;
                    }
                    if s.get(i) == Some(&'}') || i >= s.len() {
                        return i + 1;
                    }
                    i = use_tree(s, i, &path, out);
                }
            }
            Some('*') => {
                out.push(path);
                return i + 1;
            }
            Some(c) if is_ident(*c) => {
                let start = i;
                while s.get(i).is_some_and(|c| is_ident(*c)) {
                    i += 1;
                }
                path.push(s[start..i].iter().collect());
                if s.get(i) == Some(&':') && s.get(i + 1) == Some(&':') {
                    i += 2;
                    continue;
                }
                out.push(path);
                return i;
            }
            _ => {
                out.push(path);
                return i;
            }
        }
    }
}

/// One reference found in a file: the module path it names (resolved) and how it was
/// written.
struct Reference {
    target: Vec<String>,
    written: String,
    line: usize,
}

/// Every `crate::`, `super::` and `self::` reference of a file whose module is `module`.
fn references(code: &str, module: &[String]) -> Vec<Reference> {
    let s: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    // Inline modules open around the current position: (name, brace depth inside it).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut line = 1;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let at_word = i == 0 || !(is_ident(s[i - 1]) || s[i - 1] == ':');
        if c == '\n' {
            line += 1;
        } else if c == '{' {
            depth += 1;
        } else if c == '}' {
            if inline.last().is_some_and(|(_, d)| *d == depth) {
                inline.pop();
            }
            depth = depth.saturating_sub(1);
        } else if at_word && starts_with(&s, i, "mod ") {
            let mut j = i + 4;
            let start = j;
            while s.get(j).is_some_and(|c| is_ident(*c)) {
                j += 1;
            }
            let name: String = s[start..j].iter().collect();
            while s.get(j).is_some_and(|c| c.is_whitespace()) {
                j += 1;
            }
            if s.get(j) == Some(&'{') {
                inline.push((name, depth + 1));
            }
        } else if at_word {
            let here: Vec<String> = module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(n, _)| n.clone()))
                .collect();
            if let Some((base, len)) = anchor(&s, i, &here) {
                let mut paths = Vec::new();
                let end = use_tree(&s, i + len, &base, &mut paths);
                let written: String = s[i..end.min(s.len())].iter().collect();
                for target in paths {
                    found.push(Reference {
                        target,
                        written: written.split_whitespace().collect::<Vec<_>>().join(" "),
                        line,
                    });
                }
                line += s[i..end.min(s.len())]
                    .iter()
                    .filter(|c| **c == '\n')
                    .count();
                i = end;
                continue;
            }
        }
        i += 1;
    }
    found
}

/// If a path starting with `crate::`, `self::` or `super::` (repeated) begins at `i`: the
/// module it starts from and the length of that leading part.
fn anchor(s: &[char], i: usize, here: &[String]) -> Option<(Vec<String>, usize)> {
    if starts_with(s, i, "crate::") {
        return Some((Vec::new(), 7));
    }
    if starts_with(s, i, "self::") {
        return Some((here.to_vec(), 6));
    }
    let mut base = here.to_vec();
    let mut len = 0;
    while starts_with(s, i + len, "super::") {
        base.pop();
        len += 7;
    }
    (len > 0).then_some((base, len))
}

fn starts_with(s: &[char], i: usize, word: &str) -> bool {
    word.chars()
        .enumerate()
        .all(|(k, c)| s.get(i + k) == Some(&c))
}

/// Whether `from` may reference `to`; `Err` says which rule it breaks.
fn allowed(from: (&str, Layer), to: (&str, Layer)) -> Result<(), &'static str> {
    let same_unit = to.0 == from.0
        || to.0.starts_with(&format!("{}::", from.0))
        || from.0.starts_with(&format!("{}::", to.0));
    match (from.1, to.1) {
        (Root | Supervisor, _) => Ok(()),
        (_, Root) => Err("references the crate root (its re-exports): name the module"),
        (Vocabulary, Vocabulary) | (Protocol, Vocabulary | Protocol) => Ok(()),
        (Actor, Vocabulary | Protocol) => Ok(()),
        (Actor, Actor) if same_unit => Ok(()),
        (Actor, Actor) => Err("an actor imports another actor"),
        (_, Supervisor) => Err("imports the supervisor"),
        (Protocol, Actor) => Err("the protocol imports an actor"),
        (Vocabulary, Protocol) => Err("the vocabulary imports the protocol"),
        (Vocabulary, Actor) => Err("the vocabulary imports an actor"),
    }
}

struct Source {
    relative: PathBuf,
    module: Vec<String>,
    code: String,
}

fn sources() -> Vec<Source> {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&src).unwrap().to_owned();
            Source {
                module: module_of(&relative),
                code: code_only(&std::fs::read_to_string(&path).unwrap()),
                relative,
            }
        })
        .collect()
}

#[test]
fn every_engine_module_is_placed_in_a_layer() {
    let unplaced: Vec<String> = sources()
        .iter()
        .filter(|s| !MODULES.iter().any(|(m, _)| *m == s.module.join("::")))
        .map(|s| format!("actors/src/{}", s.relative.display()))
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules in no layer (add them to MODULES in actors/tests/layering.rs): {unplaced:?}"
    );
}

#[test]
fn references_point_only_down_the_layers() {
    let mut broken = Vec::new();
    for source in sources() {
        let Some(from) = place(&source.module) else {
            continue; // reported by `every_engine_module_is_placed_in_a_layer`
        };
        for r in references(&source.code, &source.module) {
            let Some(to) = place(&r.target) else {
                broken.push(format!(
                    "actors/src/{}:{}: `{}` names `{}`, which is in no layer",
                    source.relative.display(),
                    r.line,
                    r.written,
                    r.target.join("::")
                ));
                continue;
            };
            if let Err(rule) = allowed(from, to) {
                broken.push(format!(
                    "actors/src/{}:{}: {rule} ({} `{}` → {:?} `{}`): `{}`",
                    source.relative.display(),
                    r.line,
                    format!("{:?}", from.1).to_lowercase(),
                    from.0,
                    to.1,
                    to.0,
                    r.written
                ));
            }
        }
    }
    broken.dedup();
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn only_the_supervisor_spawns_actors() {
    let mut spawning = Vec::new();
    for source in sources() {
        let layer = place(&source.module).map(|p| p.1);
        let spawns = ["spawn_linked(", "Actor::spawn("]
            .iter()
            .any(|w| source.code.contains(w));
        if spawns && layer != Some(Supervisor) {
            spawning.push(format!("actors/src/{}", source.relative.display()));
        }
    }
    assert!(
        spawning.is_empty(),
        "actors spawned outside the supervisor: {spawning:?}"
    );
}

#[test]
fn the_reader_expands_groups_and_resolves_super() {
    let code = code_only(
        "use crate::a::{b, c::{d, e}};\n// crate::commented\nlet s = \"crate::quoted\";\n\
         mod tests { use super::f; }\nuse super::g::*;\n",
    );
    let module = vec!["m".to_owned(), "n".to_owned()];
    let targets: BTreeMap<String, usize> = references(&code, &module)
        .into_iter()
        .map(|r| (r.target.join("::"), r.line))
        .collect();
    let expected: BTreeMap<String, usize> = [
        ("a::b", 1),
        ("a::c::d", 1),
        ("a::c::e", 1),
        ("m::n::f", 4),
        ("m::g", 5),
    ]
    .into_iter()
    .map(|(t, l)| (t.to_owned(), l))
    .collect();
    assert_eq!(targets, expected);
}

/// The module graph: an edge from each module to every module it references (a module
/// and its own submodules are one node's business, not edges).
fn module_graph() -> BTreeMap<&'static str, std::collections::BTreeSet<&'static str>> {
    let mut graph: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
    for source in sources() {
        let Some((from, layer)) = place(&source.module) else {
            continue;
        };
        if layer == Root {
            continue;
        }
        for r in references(&source.code, &source.module) {
            let Some((to, _)) = place(&r.target) else {
                continue;
            };
            let related = to == from
                || to.starts_with(&format!("{from}::"))
                || from.starts_with(&format!("{to}::"));
            if !related {
                graph.entry(from).or_default().insert(to);
            }
        }
    }
    graph
}

/// A circle in `graph`, if there is one, as the modules along it.
fn find_circle(
    graph: &BTreeMap<&'static str, std::collections::BTreeSet<&'static str>>,
) -> Option<Vec<&'static str>> {
    fn visit(
        node: &'static str,
        graph: &BTreeMap<&'static str, std::collections::BTreeSet<&'static str>>,
        path: &mut Vec<&'static str>,
        done: &mut std::collections::BTreeSet<&'static str>,
    ) -> Option<Vec<&'static str>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node);
            return Some(circle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = std::collections::BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_import_circle_between_engine_modules() {
    let circle = find_circle(&module_graph());
    assert!(
        circle.is_none(),
        "import circle: {}",
        circle.unwrap_or_default().join(" → ")
    );
}
