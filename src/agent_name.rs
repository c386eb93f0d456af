//! Agents' run names as the application reads them: `lead` for a task's agent,
//! `lead/test-gen#2` for the second agent `lead` delegated to `test-gen` (the engine builds
//! these names). The one place the application parses them, so that the engine's own
//! name type can replace this function without touching its callers' logic; it is a leaf
//! module (imports nothing of the crate), so a provider (the replay model) and delegation
//! can both use it without importing each other.

/// The definition an agent of a run comes from: `lead` for `lead`, `test-gen` for
/// `lead/test-gen#2` (a delegated agent's run name).
pub fn definition_name(run_name: &str) -> &str {
    let last = run_name.rsplit('/').next().unwrap_or(run_name);
    last.split('#').next().unwrap_or(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delegated_agents_definition_is_the_last_name_of_its_lineage() {
        assert_eq!(definition_name("lead"), "lead");
        assert_eq!(definition_name("lead/test-gen#2"), "test-gen");
        assert_eq!(definition_name("lead/a#1/b#3"), "b");
    }
}
