//! `codex agents list|show|validate`: each returns the text to print, so the output can be
//! snapshot-tested; the CLI only prints it (and picks the exit status for `validate`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::definition::{
    default_codex_home, discover, duplicate_names, format_deadline, load_file, load_source,
    AgentDefinition, Catalog, LoadedDefinition, Parsed, Source,
};

/// Descriptions in `list` are cut to this many characters.
const DESCRIPTION_WIDTH: usize = 72;

/// `codex agents list`: one row per agent (name, budget, source, first line of the goal or
/// else of the instructions) under a header, columns aligned, sorted by name. A budget the
/// definition does not set shows the default in parentheses; workspace files show relative
/// to the workspace ([`Catalog::display_source`]).
pub fn list(catalog: &Catalog) -> String {
    let header = ["NAME", "BUDGET", "SOURCE", "DESCRIPTION"].map(str::to_owned);
    let rows: Vec<[String; 4]> = catalog.iter().map(|l| list_row(catalog, l)).collect();
    let mut widths = [0; 3];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:<w0$}  {:>w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn list_row(catalog: &Catalog, loaded: &LoadedDefinition) -> [String; 4] {
    let def = &loaded.definition;
    let budget = def.budget.map_or_else(
        || format!("({})", crate::definition::DEFAULT_BUDGET),
        |b| b.to_string(),
    );
    [
        def.name.clone(),
        budget,
        catalog.display_source(&loaded.source),
        description(def),
    ]
}

/// The first non-blank line of the goal, else of the instructions, cut to
/// [`DESCRIPTION_WIDTH`] characters.
fn description(def: &AgentDefinition) -> String {
    let first_line = |s: &str| {
        s.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
    };
    let line = def
        .goal
        .as_deref()
        .and_then(first_line)
        .or_else(|| first_line(&def.instructions))
        .unwrap_or_default();
    if line.chars().count() <= DESCRIPTION_WIDTH {
        return line;
    }
    let cut: String = line.chars().take(DESCRIPTION_WIDTH - 1).collect();
    format!("{cut}…")
}

/// `codex agents show NAME`: where the definition comes from (and what it overrides), the
/// definition as YAML, then its effective settings, permissions and tools as YAML comments,
/// so the whole output is itself a valid definition.
///
/// Guarantees: an unknown name is an error listing the available names.
pub fn show(catalog: &Catalog, name: &str) -> anyhow::Result<String> {
    let loaded = catalog.require(name)?;
    let def = &loaded.definition;
    let mut out = format!("# source: {}\n", loaded.source.origin());
    for older in &loaded.overrides {
        let _ = writeln!(out, "# overrides: {}", older.origin());
    }
    out.push_str(&serde_yaml::to_string(def)?);
    out.push('\n');
    out.push_str(&effective(def)?);
    Ok(out)
}

/// The effective settings of a definition without command-line overrides, as comments.
fn effective(def: &AgentDefinition) -> anyhow::Result<String> {
    let goal = def.goal.clone().unwrap_or_else(|| "(from --goal)".into());
    let spec = def.to_spec(Some(goal), None, None, None)?;
    let list = |items: &[String]| match items {
        [] => "(none)".to_owned(),
        _ => items.join(", "),
    };
    let deadline = spec
        .deadline
        .map_or_else(|| "(none)".to_owned(), format_deadline);
    let rows = [
        ("budget", format!("{} tokens", spec.budget)),
        ("deadline", deadline),
        ("max_turns", spec.max_turns.to_string()),
        ("max_output_tokens", spec.max_output_tokens.to_string()),
        ("tools offered", list(&spec.tools)),
        ("read", list(&spec.permissions.read)),
        ("write", list(&spec.permissions.write)),
        ("network", list(&spec.permissions.network)),
        ("exec", list(&spec.permissions.exec)),
        ("mcp", list(&spec.permissions.mcp)),
        ("delegate to", list(&spec.permissions.delegate)),
    ];
    let mut out = String::from(
        "# Effective (defaults applied; --goal, --scope, --budget, --deadline override):\n",
    );
    for (key, value) in rows {
        let _ = writeln!(out, "#   {:<18} {value}", format!("{key}:"));
    }
    Ok(out)
}

/// `codex agents validate [FILES]`: checks the given files, or with none every definition
/// found (bundled, `$CODEX_HOME/agents`, `<workspace>/.codex/agents`). Returns the report
/// and whether every file is free of errors (warnings do not count).
pub fn validate(files: &[PathBuf], workspace: &Path, unknown: Unknown) -> (String, bool) {
    validate_from(files, workspace, default_codex_home().as_deref(), unknown)
}

/// What `agents validate` makes of an unknown field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// An error: the file does not validate (default; a typo is silently ignored at run
    /// time, so validation is where it must show).
    Fail,
    /// A warning (`--allow-unknown`).
    Warn,
}

/// [`validate`] with an explicit `$CODEX_HOME` (for tests).
///
/// Guarantees: one `ok` or `error` line per file, `warning` lines under it for unknown
/// fields, an `error` line per name duplicated within a directory, and a summary line.
pub fn validate_from(
    files: &[PathBuf],
    workspace: &Path,
    codex_home: Option<&Path>,
    unknown: Unknown,
) -> (String, bool) {
    let results: Vec<(Source, anyhow::Result<Parsed>)> = if files.is_empty() {
        match discover(workspace, codex_home) {
            Ok(sources) => sources
                .into_iter()
                .map(|s| {
                    let parsed = load_source(&s);
                    (s, parsed)
                })
                .collect(),
            Err(e) => return (format!("error    {e:#}\n"), false),
        }
    } else {
        files
            .iter()
            .map(|f| (Source::File(f.clone()), load_file(f)))
            .collect()
    };
    report(&results, unknown)
}

fn report(results: &[(Source, anyhow::Result<Parsed>)], unknown: Unknown) -> (String, bool) {
    let mut out = String::new();
    let (mut failed, mut warnings) = (0, 0);
    for (source, result) in results {
        match result {
            Ok(parsed) if unknown == Unknown::Fail && !parsed.warnings.is_empty() => {
                for w in &parsed.warnings {
                    let _ = writeln!(out, "error    {w}");
                }
                let _ = writeln!(
                    out,
                    "         (--allow-unknown accepts unknown fields as warnings)"
                );
                failed += 1;
            }
            Ok(parsed) => {
                let _ = writeln!(
                    out,
                    "ok       {} ({})",
                    source.origin(),
                    parsed.definition.name
                );
                for w in &parsed.warnings {
                    let _ = writeln!(out, "warning  {w}");
                }
                warnings += parsed.warnings.len();
            }
            Err(e) => {
                let _ = writeln!(out, "error    {e:#}");
                failed += 1;
            }
        }
    }
    let parsed = results
        .iter()
        .filter_map(|(s, r)| r.as_ref().ok().map(|p| (s, &p.definition)));
    let duplicates = duplicate_names(parsed);
    for d in &duplicates {
        let _ = writeln!(out, "error    {d}");
    }
    let _ = writeln!(
        out,
        "{} file(s) checked: {} with errors, {} duplicate name(s), {} warning(s)",
        results.len(),
        failed,
        duplicates.len(),
        warnings
    );
    (out, failed == 0 && duplicates.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled_only() -> Catalog {
        let ws = tempfile::tempdir().unwrap();
        Catalog::load_from(ws.path(), None).unwrap()
    }

    fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn list_shows_the_bundled_agents() {
        insta::assert_snapshot!(list(&bundled_only()));
    }

    #[test]
    fn list_shows_overriding_files_and_default_budgets() {
        let ws = tempfile::tempdir().unwrap();
        let agents = ws.path().join(".codex").join("agents");
        write(
            &agents,
            "mine.yaml",
            "name: code-reviewer\ninstructions: |\n  Be brief.\n  Really.\n",
        );
        let catalog = Catalog::load_from(ws.path(), None).unwrap();
        insta::assert_snapshot!(list(&catalog));
    }

    #[test]
    fn show_prints_definition_and_effective_permissions() {
        insta::assert_snapshot!(show(&bundled_only(), "researcher").unwrap());
    }

    #[test]
    fn show_output_is_a_valid_definition_of_the_same_agent() {
        let catalog = bundled_only();
        for name in catalog.names() {
            let text = show(&catalog, name).unwrap();
            let parsed = crate::definition::parse_definition(&text, "show").unwrap();
            assert!(parsed.warnings.is_empty(), "{name}: {:?}", parsed.warnings);
            assert_eq!(&parsed.definition, &catalog.get(name).unwrap().definition);
        }
    }

    #[test]
    fn show_of_an_unknown_agent_lists_the_available_ones() {
        let e = show(&bundled_only(), "nope").unwrap_err().to_string();
        assert!(e.contains("available: code-reviewer"), "{e}");
    }

    #[test]
    fn validate_without_files_checks_every_bundled_definition() {
        let ws = tempfile::tempdir().unwrap();
        let (out, ok) = validate_from(&[], ws.path(), None, Unknown::Fail);
        assert!(ok, "{out}");
        insta::assert_snapshot!(out);
    }

    #[test]
    fn validate_reports_errors_and_warnings_per_file() {
        let ws = tempfile::tempdir().unwrap();
        let good = write(ws.path(), "good.yaml", "name: good\nextra: 1\n");
        let bad = write(ws.path(), "bad.yaml", "name: bad\nbudget: lots\n");
        let (out, ok) = validate_from(&[good, bad], ws.path(), None, Unknown::Warn);
        let out = out.replace(&ws.path().display().to_string(), "[WS]");
        assert!(!ok);
        insta::assert_snapshot!(out);
    }

    #[test]
    fn validate_explains_each_kind_of_error() {
        let ws = tempfile::tempdir().unwrap();
        let files = [
            ("1-no-name.yaml", "goal: x\nbudget: 5\n"),
            ("2-bad-name.yaml", "name: Code Reviewer\n"),
            ("3-syntax.yaml", "name: a\nbudget: 5\n- x\n"),
            ("4-deadline.yaml", "name: a\ndeadline: soon\n"),
            (
                "5-glob.yaml",
                "name: a\ntools:\n  fs:\n    write: [/etc/]\n",
            ),
            (
                "6-url.yaml",
                "name: a\ntools:\n  net:\n    allow: [docs.rs]\n",
            ),
            (
                "7-nested.yaml",
                "name: a\ntools:\n  fs:\n    read: yes please\n",
            ),
        ];
        let paths: Vec<PathBuf> = files.iter().map(|(f, t)| write(ws.path(), f, t)).collect();
        let (out, ok) = validate_from(&paths, ws.path(), None, Unknown::Fail);
        assert!(!ok);
        insta::assert_snapshot!(out.replace(&ws.path().display().to_string(), "[WS]"));
    }

    #[test]
    fn validate_fails_on_an_unknown_field_unless_allowed() {
        let ws = tempfile::tempdir().unwrap();
        let typo = write(ws.path(), "typo.yaml", "name: a\nbudgett: 5000\n");
        let (out, ok) = validate_from(std::slice::from_ref(&typo), ws.path(), None, Unknown::Fail);
        assert!(!ok, "{out}");
        assert!(out.contains("error    "), "{out}");
        assert!(out.contains("did you mean `budget`?"), "{out}");
        let (out, ok) = validate_from(&[typo], ws.path(), None, Unknown::Warn);
        assert!(ok, "{out}");
        assert!(out.contains("warning  "), "{out}");
    }

    #[test]
    fn validate_flags_duplicate_names_in_one_directory() {
        let ws = tempfile::tempdir().unwrap();
        let agents = ws.path().join(".codex").join("agents");
        write(&agents, "a.yaml", "name: twin\n");
        write(&agents, "b.yaml", "name: twin\n");
        let (out, ok) = validate_from(&[], ws.path(), None, Unknown::Fail);
        assert!(!ok);
        assert!(out.contains("`twin` is defined more than once"), "{out}");
    }

    #[test]
    fn validate_of_a_missing_file_is_an_error() {
        let ws = tempfile::tempdir().unwrap();
        let (out, ok) = validate_from(
            &[ws.path().join("nope.yaml")],
            ws.path(),
            None,
            Unknown::Fail,
        );
        assert!(!ok);
        assert!(out.contains("nope.yaml: cannot read the file"), "{out}");
    }
}
