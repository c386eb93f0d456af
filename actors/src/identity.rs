//! Who is who in a run: agents' names and the run's services. Vocabulary: plain data and
//! pure functions, no actor.
//!
//! An agent's name says its place in the delegation tree. A run's own agents have plain
//! names (`lead`; [`crate::start`] refuses a `/` in them); a delegated agent is named after
//! its parent, its definition and how many children its parent had delegated before:
//! `lead/test-gen#1` is the first child `lead` delegated to `test-gen`, and
//! `lead/a#1/b#2` a grandchild. [`AgentName`] is the one place that builds and reads such
//! names.

/// An agent's run name, read as its place in the delegation tree. Borrowed, so reading a
/// name (once per audit record) costs no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgentName<'a> {
    full: &'a str,
}

impl<'a> AgentName<'a> {
    /// Reads `name`. Every string is a name: one without `/` is a run's own agent.
    pub fn parse(name: &'a str) -> Self {
        Self { full: name }
    }

    /// The name of the `number`th child (counted from 1) that this agent delegated to the
    /// definition `definition`.
    pub fn child(&self, definition: &str, number: u32) -> String {
        format!("{}/{definition}#{number}", self.full)
    }

    /// The whole name.
    pub fn as_str(&self) -> &'a str {
        self.full
    }

    /// The agent that delegated to this one: `lead` for `lead/test-gen#1`; `None` for a
    /// run's own agent.
    pub fn parent(&self) -> Option<&'a str> {
        self.full.rsplit_once('/').map(|(parent, _)| parent)
    }

    /// Its depth in the delegation tree: 0 for a run's own agents, 1 for their children.
    pub fn depth(&self) -> u32 {
        self.full.matches('/').count() as u32
    }

    /// The definition it runs: `test-gen` for `lead/test-gen#2`, `lead` for `lead`.
    pub fn definition(&self) -> &'a str {
        let last = self.full.rsplit('/').next().unwrap_or(self.full);
        last.split('#').next().unwrap_or(last)
    }

    /// For a delegated agent, which of its parent's children it is (from 1).
    pub fn child_number(&self) -> Option<u32> {
        let last = self.full.rsplit_once('/')?.1;
        last.rsplit_once('#')?.1.parse().ok()
    }
}

impl std::fmt::Display for AgentName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.full)
    }
}

/// The run's service actors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKind {
    /// The BudgetActor.
    Budget,
    /// The AuditActor.
    Audit,
    /// The PolicyActor.
    Policy,
}

impl ServiceKind {
    /// All three, in start order (audit first, so everything after it can be recorded).
    pub const ALL: [ServiceKind; 3] =
        [ServiceKind::Audit, ServiceKind::Budget, ServiceKind::Policy];

    /// `budget`, `audit` or `policy`.
    pub fn label(self) -> &'static str {
        match self {
            ServiceKind::Budget => "budget",
            ServiceKind::Audit => "audit",
            ServiceKind::Policy => "policy",
        }
    }
}

/// The registry name of a run's service: `<run_id>/<service>`.
pub fn service_name(run_id: &str, kind: ServiceKind) -> String {
    format!("{run_id}/{}", kind.label())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_run_agent_has_no_parent_and_depth_zero() {
        let name = AgentName::parse("lead");
        assert_eq!((name.parent(), name.depth()), (None, 0));
        assert_eq!(name.definition(), "lead");
        assert_eq!(name.child_number(), None);
    }

    #[test]
    fn a_delegated_name_says_its_parent_depth_definition_and_number() {
        let name = AgentName::parse("lead/a#1/test-gen#2");
        assert_eq!(name.parent(), Some("lead/a#1"));
        assert_eq!(name.depth(), 2);
        assert_eq!(name.definition(), "test-gen");
        assert_eq!(name.child_number(), Some(2));
    }

    #[test]
    fn a_child_name_is_built_from_its_parent() {
        let child = AgentName::parse("lead").child("test-gen", 1);
        assert_eq!(child, "lead/test-gen#1");
    }

    proptest! {
        #[test]
        fn a_built_child_name_reads_back(
            parent in "[a-z][a-z-]{0,8}(/[a-z][a-z-]{0,8}#[1-9])?",
            definition in "[a-z][a-z-]{0,8}",
            number in 1u32..1000,
        ) {
            let parent_name = AgentName::parse(&parent);
            let child = parent_name.child(&definition, number);
            let name = AgentName::parse(&child);
            prop_assert_eq!(name.parent(), Some(parent.as_str()));
            prop_assert_eq!(name.depth(), parent_name.depth() + 1);
            prop_assert_eq!(name.definition(), definition.as_str());
            prop_assert_eq!(name.child_number(), Some(number));
        }
    }
}
