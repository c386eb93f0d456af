//! Finding definitions and layering them into a [`Catalog`].
//!
//! Three layers, in order: the bundled definitions, `$CODEX_HOME/agents/*.yaml` (default
//! `~/.codex`), then `<workspace>/.codex/agents/*.yaml`. A later layer overrides an earlier
//! one by the `name` inside the file; the file name plays no part. Within one directory a
//! name may appear only once.
//!
//! A broken file (malformed, or a name defined twice in one directory) does not stop the
//! commands that do not need it: its agent (the `name` it tries to define, else its file
//! name) becomes *broken*, a warning says so, and only asking for that agent is an error,
//! naming the file and the problem. A broken override never falls back silently to the
//! definition it overrides (a bundled agent of the same name): that would run an agent
//! with other permissions than the workspace asked for. Nothing is skipped silently.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};

use super::bundled::BUNDLED;
use super::parse::{parse_definition, Parsed};
use super::schema::AgentDefinition;

/// Where a definition came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Shipped in the binary, from this file of the repository's `agents/`.
    Bundled(&'static str),
    /// Read from this file.
    File(PathBuf),
    /// Handed over by the delegating codex (a child `codex mcp-server`): the parent run's
    /// definition, read when that run started.
    Handed,
}

impl Source {
    /// The name used at the start of messages: `<bundled>/x.yaml` or the file's path.
    pub fn origin(&self) -> String {
        match self {
            Source::Bundled(file) => format!("<bundled>/{file}"),
            Source::File(path) => path.display().to_string(),
            Source::Handed => "<handed over by the delegating codex>".to_owned(),
        }
    }

    /// The directory the definition lives in, for duplicate checks (`None` when bundled).
    fn dir(&self) -> Option<&Path> {
        match self {
            Source::Bundled(_) | Source::Handed => None,
            Source::File(path) => path.parent(),
        }
    }

    fn text(&self) -> anyhow::Result<String> {
        match self {
            Source::Bundled(file) => BUNDLED
                .iter()
                .find(|(f, _)| f == file)
                .map(|(_, text)| text.to_string())
                .ok_or_else(|| anyhow!("<bundled>/{file}: no such bundled definition")),
            Source::File(path) => std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read the file", path.display())),
            Source::Handed => bail!("a handed-over definition has no text to read"),
        }
    }
}

/// Shown as `bundled` or the file's path.
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Bundled(_) => f.write_str("bundled"),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Handed => f.write_str("handed over by the delegating codex"),
        }
    }
}

/// A definition and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedDefinition {
    /// The definition (valid name, compiling permissions).
    pub definition: AgentDefinition,
    /// The file it was read from.
    pub source: Source,
    /// Definitions of the same name in earlier layers that this one replaces, oldest first.
    pub overrides: Vec<Source>,
}

/// Reads and parses one definition file.
///
/// Guarantees: as [`parse_definition`], with the file's path as the origin; an unreadable
/// file is an error naming it.
pub fn load_file(path: &Path) -> anyhow::Result<Parsed> {
    load_source(&Source::File(path.to_owned()))
}

/// Reads and parses one definition from its source.
pub fn load_source(source: &Source) -> anyhow::Result<Parsed> {
    parse_definition(&source.text()?, &source.origin())
}

/// `$CODEX_HOME` if set and non-empty, else `$HOME/.codex`; `None` if neither is known.
pub fn default_codex_home() -> Option<PathBuf> {
    match std::env::var_os("CODEX_HOME") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".codex")),
    }
}

/// Every definition source, in layer order: bundled, `<codex_home>/agents/*.yaml`,
/// `<workspace>/.codex/agents/*.yaml`; within a directory, by file name. `.yaml` and `.yml`
/// files count; a missing directory is an empty layer.
///
/// Guarantees: an existing directory that cannot be listed is an error naming it.
pub fn discover(workspace: &Path, codex_home: Option<&Path>) -> anyhow::Result<Vec<Source>> {
    let mut sources: Vec<Source> = BUNDLED.iter().map(|(f, _)| Source::Bundled(f)).collect();
    if let Some(home) = codex_home {
        sources.extend(yaml_files(&home.join("agents"))?);
    }
    sources.extend(yaml_files(&workspace.join(".codex").join("agents"))?);
    Ok(sources)
}

fn yaml_files(dir: &Path) -> anyhow::Result<Vec<Source>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("{}: cannot list", dir.display()))?
            .path();
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files.into_iter().map(Source::File).collect())
}

/// One errors line per name defined more than once in the same directory (the bundled set
/// counts as one directory), naming the files.
pub fn duplicate_names<'a>(
    items: impl IntoIterator<Item = (&'a Source, &'a AgentDefinition)>,
) -> Vec<String> {
    let mut seen: BTreeMap<(Option<&Path>, &str), Vec<String>> = BTreeMap::new();
    for (source, def) in items {
        let key = (source.dir(), def.name.as_str());
        seen.entry(key).or_default().push(source.origin());
    }
    seen.into_iter()
        .filter(|(_, files)| files.len() > 1)
        .map(|((_, name), files)| {
            format!(
                "agent `{name}` is defined more than once in one directory: {}",
                files.join(", ")
            )
        })
        .collect()
}

/// The (directory, name) pairs defined more than once within one directory, each with
/// the error naming the files.
fn duplicates(
    results: &[(Source, Result<Parsed, String>)],
) -> BTreeMap<(Option<PathBuf>, String), String> {
    let parsed = results
        .iter()
        .filter_map(|(s, p)| p.as_ref().ok().map(|p| (s, &p.definition)));
    let mut files: BTreeMap<(Option<PathBuf>, String), Vec<String>> = BTreeMap::new();
    for (source, def) in parsed {
        let key = (source.dir().map(Path::to_owned), def.name.clone());
        files.entry(key).or_default().push(source.origin());
    }
    files
        .into_iter()
        .filter(|(_, f)| f.len() > 1)
        .map(|((dir, name), f)| {
            let why = format!(
                "agent `{name}` is defined more than once in one directory: {}",
                f.join(", ")
            );
            ((dir, name), why)
        })
        .collect()
}

/// The agent a broken file meant to define: its `name:` if that much can be read, else its
/// file name without the extension.
fn intended_name(source: &Source) -> String {
    let from_yaml = source.text().ok().and_then(|text| {
        text.lines().find_map(|line| {
            let value = line.strip_prefix("name:")?.trim();
            let value = value.split(" #").next()?.trim().trim_matches(['"', '\'']);
            (!value.is_empty()).then(|| value.to_owned())
        })
    });
    from_yaml.unwrap_or_else(|| match source {
        Source::Bundled(file) => file_stem(file),
        Source::File(path) => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        Source::Handed => String::new(),
    })
}

fn file_stem(file: &str) -> String {
    file.rsplit_once('.')
        .map_or(file, |(stem, _)| stem)
        .to_owned()
}

/// The agents available in a workspace, after overrides.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    agents: BTreeMap<String, LoadedDefinition>,
    /// Agents whose latest definition is broken, with why (naming the file).
    broken: BTreeMap<String, String>,
    warnings: Vec<String>,
    workspace: PathBuf,
}

impl Catalog {
    /// Loads the catalog for `workspace`, with the home directory of [`default_codex_home`].
    pub fn load(workspace: &Path) -> anyhow::Result<Self> {
        Self::load_from(workspace, default_codex_home().as_deref())
    }

    /// Loads the catalog from the bundled definitions, `<codex_home>/agents` (if given) and
    /// `<workspace>/.codex/agents`.
    ///
    /// Guarantees: every file is parsed. Each name maps to its definition from the latest
    /// layer; a name whose latest definition is broken (malformed, or defined twice in one
    /// directory) is broken: [`Self::require`] refuses it with the problem, and
    /// [`Self::warnings`] holds one line per broken file besides the unknown-field
    /// warnings. Only a directory that cannot be listed is an error.
    pub fn load_from(workspace: &Path, codex_home: Option<&Path>) -> anyhow::Result<Self> {
        let mut results = Vec::new();
        for source in discover(workspace, codex_home)? {
            let parsed = load_source(&source).map_err(|e| format!("{e:#}"));
            results.push((source, parsed));
        }
        let twice = duplicates(&results);
        let mut catalog = Self {
            workspace: workspace.to_owned(),
            ..Self::default()
        };
        for (source, parsed) in results {
            match parsed {
                Ok(parsed) => {
                    let key = (
                        source.dir().map(Path::to_owned),
                        parsed.definition.name.clone(),
                    );
                    match twice.get(&key) {
                        Some(why) => catalog.insert_broken(key.1, why.clone()),
                        None => catalog.insert(source, parsed),
                    }
                }
                Err(why) => {
                    let name = intended_name(&source);
                    catalog.insert_broken(name, why);
                }
            }
        }
        Ok(catalog)
    }

    /// A catalog of `definitions` handed over by a delegating codex (see
    /// `containment::handoff`): nothing is read from disk.
    pub fn handed(workspace: &Path, definitions: Vec<AgentDefinition>) -> Self {
        let agents = definitions
            .into_iter()
            .map(|definition| {
                let loaded = LoadedDefinition {
                    definition,
                    source: Source::Handed,
                    overrides: Vec::new(),
                };
                (loaded.definition.name.clone(), loaded)
            })
            .collect();
        Self {
            agents,
            warnings: Vec::new(),
            workspace: workspace.to_owned(),
            broken: Default::default(),
        }
    }

    /// Marks `name` broken (its latest definition is `why`), replacing an earlier layer's.
    fn insert_broken(&mut self, name: String, why: String) {
        self.warnings.push(format!(
            "{why}\n  (agent `{name}` is unavailable until this is fixed; other agents are not affected)"
        ));
        self.agents.remove(&name);
        self.broken.insert(name, why);
    }

    fn insert(&mut self, source: Source, parsed: Parsed) {
        self.warnings.extend(parsed.warnings);
        let name = parsed.definition.name.clone();
        self.broken.remove(&name);
        let overrides = match self.agents.remove(&name) {
            Some(mut older) => {
                older.overrides.push(older.source);
                older.overrides
            }
            None => Vec::new(),
        };
        let loaded = LoadedDefinition {
            definition: parsed.definition,
            source,
            overrides,
        };
        self.agents.insert(name, loaded);
    }

    /// The definition named `name`, if any.
    pub fn get(&self, name: &str) -> Option<&LoadedDefinition> {
        self.agents.get(name)
    }

    /// The definition named `name`, or an error: the problem of its broken definition, or
    /// the available names.
    pub fn require(&self, name: &str) -> anyhow::Result<&LoadedDefinition> {
        if let Some(why) = self.broken.get(name) {
            bail!("agent `{name}` cannot be used, its definition is invalid: {why}");
        }
        self.get(name).ok_or_else(|| {
            let broken = match self.broken.is_empty() {
                true => String::new(),
                false => format!(
                    " (broken, see the warnings: {})",
                    self.broken.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            };
            anyhow!(
                "unknown agent `{name}`; available: {}{broken}",
                self.names().join(", ")
            )
        })
    }

    /// The agents' names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.agents.keys().map(String::as_str).collect()
    }

    /// The definitions, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &LoadedDefinition> {
        self.agents.values()
    }

    /// A source for people: `bundled`, a path relative to the workspace for the workspace's
    /// own definitions (`.codex/agents/x.yaml`), else the full path.
    pub fn display_source(&self, source: &Source) -> String {
        match source {
            Source::File(path) => match path.strip_prefix(&self.workspace) {
                Ok(relative) => relative.display().to_string(),
                Err(_) => path.display().to_string(),
            },
            Source::Bundled(_) | Source::Handed => source.to_string(),
        }
    }

    /// Unknown-field warnings from every file read, one line each, naming file and field.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn ws_agents(ws: &Path) -> PathBuf {
        ws.join(".codex").join("agents")
    }

    #[test]
    fn bundled_list_matches_the_agents_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("agents");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".yaml"))
            .collect();
        on_disk.sort();
        let bundled: Vec<&str> = BUNDLED.iter().map(|(f, _)| *f).collect();
        assert_eq!(on_disk, bundled);
    }

    #[test]
    fn every_bundled_definition_loads_without_warnings_and_converts() {
        for (file, _) in BUNDLED {
            let parsed = load_source(&Source::Bundled(file)).unwrap();
            assert!(parsed.warnings.is_empty(), "{file}: {:?}", parsed.warnings);
            let def = &parsed.definition;
            assert_eq!(format!("{}.yaml", def.name), *file);
            let spec = def.to_spec(Some("g".into()), None, None, None).unwrap();
            assert!(spec.tools.contains(&"read_file".to_string()), "{file}");
            assert!(spec.tools.contains(&"write_file".to_string()), "{file}");
            assert!(def.budget.is_some() && def.deadline.is_some() && def.max_turns.is_some());
            assert!(!def.success_criteria.is_empty());
            // A lead's artifacts are its children's.
            assert!(!def.artifacts.is_empty() || !def.tools.delegate.agents.is_empty());
        }
    }

    #[test]
    fn bundled_agents_are_available_without_any_files() {
        let ws = tempfile::tempdir().unwrap();
        let c = Catalog::load_from(ws.path(), None).unwrap();
        assert_eq!(
            c.names(),
            vec![
                "code-reviewer",
                "docs-gen",
                "researcher",
                "sec-audit",
                "tech-lead",
                "test-gen"
            ]
        );
        assert!(c.warnings().is_empty());
    }

    #[test]
    fn workspace_overrides_home_overrides_bundled() {
        let ws = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        write(
            &home.path().join("agents"),
            "a.yaml",
            "name: code-reviewer\nbudget: 1\n",
        );
        write(
            &home.path().join("agents"),
            "b.yaml",
            "name: test-gen\nbudget: 2\n",
        );
        let ws_file = write(
            &ws_agents(ws.path()),
            "c.yaml",
            "name: code-reviewer\nbudget: 3\n",
        );
        let c = Catalog::load_from(ws.path(), Some(home.path())).unwrap();
        let reviewer = c.get("code-reviewer").unwrap();
        assert_eq!(reviewer.definition.budget.map(|b| b.get()), Some(3));
        assert_eq!(reviewer.source, Source::File(ws_file));
        assert_eq!(reviewer.overrides.len(), 2);
        assert_eq!(reviewer.overrides[0], Source::Bundled("code-reviewer.yaml"));
        assert_eq!(
            c.get("test-gen")
                .unwrap()
                .definition
                .budget
                .map(|b| b.get()),
            Some(2)
        );
    }

    #[test]
    fn definitions_are_keyed_by_name_not_file_name() {
        let ws = tempfile::tempdir().unwrap();
        write(&ws_agents(ws.path()), "whatever.yaml", "name: my-agent\n");
        let c = Catalog::load_from(ws.path(), None).unwrap();
        assert!(c.get("my-agent").is_some());
        assert!(c.get("whatever").is_none());
    }

    #[test]
    fn duplicate_names_in_one_directory_make_the_agent_unavailable_naming_both_files() {
        let ws = tempfile::tempdir().unwrap();
        write(&ws_agents(ws.path()), "a.yaml", "name: twin\n");
        write(&ws_agents(ws.path()), "b.yml", "name: twin\n");
        let c = Catalog::load_from(ws.path(), None).unwrap();
        let e = c.require("twin").unwrap_err().to_string();
        assert!(e.contains("`twin` is defined more than once"), "{e}");
        assert!(e.contains("a.yaml") && e.contains("b.yml"), "{e}");
    }

    #[test]
    fn a_malformed_file_makes_only_its_agent_unavailable_naming_file_and_line() {
        let ws = tempfile::tempdir().unwrap();
        let path = write(
            &ws_agents(ws.path()),
            "bad.yaml",
            "name: bad\nmax_turns: many\n",
        );
        let c = Catalog::load_from(ws.path(), None).unwrap();
        let e = c.require("bad").unwrap_err().to_string();
        let expected = format!("{}:2:12: field `max_turns`", path.display());
        assert!(e.contains(&expected), "{e}");
        assert!(c.require("code-reviewer").is_ok());
        assert!(c.warnings().iter().any(|w| w.contains(&expected)));
    }

    #[test]
    fn a_broken_override_never_falls_back_to_the_bundled_agent() {
        let ws = tempfile::tempdir().unwrap();
        write(
            &ws_agents(ws.path()),
            "mine.yaml",
            "name: code-reviewer\nbudget: lots\n",
        );
        let c = Catalog::load_from(ws.path(), None).unwrap();
        let e = c.require("code-reviewer").unwrap_err().to_string();
        assert!(e.contains("mine.yaml:2:"), "{e}");
        assert!(c.get("code-reviewer").is_none());
    }

    #[test]
    fn a_later_good_definition_replaces_an_earlier_broken_one() {
        let ws = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        write(
            &home.path().join("agents"),
            "x.yaml",
            "name: x\nbudget: lots\n",
        );
        write(&ws_agents(ws.path()), "x.yaml", "name: x\n");
        let c = Catalog::load_from(ws.path(), Some(home.path())).unwrap();
        assert!(c.require("x").is_ok());
    }

    #[test]
    fn every_broken_file_is_reported_at_once() {
        let ws = tempfile::tempdir().unwrap();
        write(&ws_agents(ws.path()), "a.yaml", "budget: 5\n");
        write(&ws_agents(ws.path()), "b.yaml", "name: B\n");
        let c = Catalog::load_from(ws.path(), None).unwrap();
        let all = c.warnings().join("\n");
        assert!(all.contains("a.yaml") && all.contains("b.yaml"), "{all}");
    }

    #[test]
    fn unknown_fields_become_catalog_warnings() {
        let ws = tempfile::tempdir().unwrap();
        write(&ws_agents(ws.path()), "a.yaml", "name: a\ncolour: blue\n");
        let c = Catalog::load_from(ws.path(), None).unwrap();
        assert_eq!(c.warnings().len(), 1);
        assert!(c.warnings()[0].ends_with("a.yaml: unknown field `colour` (ignored)"));
    }

    #[test]
    fn non_yaml_files_are_ignored() {
        let ws = tempfile::tempdir().unwrap();
        write(&ws_agents(ws.path()), "notes.txt", "not yaml: [");
        assert!(Catalog::load_from(ws.path(), None).is_ok());
    }

    #[test]
    fn an_unknown_name_lists_the_available_ones() {
        let ws = tempfile::tempdir().unwrap();
        let c = Catalog::load_from(ws.path(), None).unwrap();
        let e = c.require("nope").unwrap_err().to_string();
        assert!(e.contains("unknown agent `nope`"), "{e}");
        assert!(e.contains("code-reviewer, docs-gen"), "{e}");
    }
}
