//! The definitions shipped inside the binary: every `agents/*.yaml` of the repository,
//! embedded with `include_str!`. A test checks that this list and the directory agree.

/// `(file name, YAML text)` of each bundled definition, sorted by file name.
pub const BUNDLED: &[(&str, &str)] = &[
    (
        "code-reviewer.yaml",
        include_str!("../../agents/code-reviewer.yaml"),
    ),
    ("docs-gen.yaml", include_str!("../../agents/docs-gen.yaml")),
    (
        "researcher.yaml",
        include_str!("../../agents/researcher.yaml"),
    ),
    (
        "sec-audit.yaml",
        include_str!("../../agents/sec-audit.yaml"),
    ),
    (
        "tech-lead.yaml",
        include_str!("../../agents/tech-lead.yaml"),
    ),
    ("test-gen.yaml", include_str!("../../agents/test-gen.yaml")),
];
