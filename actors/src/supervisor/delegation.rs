//! The supervisor's delegation bookkeeping, as pure data: which slots are whose children,
//! how many children each agent delegated (they number the children's names), and where
//! each delegated agent's report goes. Whether a delegation may start at all is decided by
//! [`refusal`], from facts the shell gathers. Generic over the report port, so it is
//! tested without actors.

use std::collections::HashMap;

use crate::identity::AgentName;

/// Children and report ports, by slot index.
#[derive(Debug)]
pub(crate) struct Delegations<P> {
    children: HashMap<usize, Vec<usize>>,
    delegated: HashMap<usize, u32>,
    waiting: HashMap<usize, P>,
}

impl<P> Default for Delegations<P> {
    fn default() -> Self {
        Self {
            children: HashMap::new(),
            delegated: HashMap::new(),
            waiting: HashMap::new(),
        }
    }
}

impl<P> Delegations<P> {
    /// The run name of the next child that the agent in slot `parent`, named
    /// `parent_name`, delegates to the definition `definition`.
    pub(crate) fn next_child_name(
        &mut self,
        parent: usize,
        parent_name: &str,
        definition: &str,
    ) -> String {
        let count = self.delegated.entry(parent).or_default();
        *count += 1;
        AgentName::parse(parent_name).child(definition, *count)
    }

    /// Slot `child` is a child of slot `parent`; its report goes to `port`.
    pub(crate) fn adopt(&mut self, parent: usize, child: usize, port: P) {
        self.children.entry(parent).or_default().push(child);
        self.waiting.insert(child, port);
    }

    /// The children of slot `parent`, in the order delegated.
    pub(crate) fn children_of(&self, parent: usize) -> &[usize] {
        self.children.get(&parent).map_or(&[], Vec::as_slice)
    }

    /// Where slot `child`'s report goes, once (`None` for a run's own agent, or when taken).
    pub(crate) fn take_port(&mut self, child: usize) -> Option<P> {
        self.waiting.remove(&child)
    }
}

/// What the shell knows when an agent asks to delegate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asking<'a> {
    /// The delegating agent's name.
    pub(crate) name: &'a str,
    /// Whether the attempt that asked still runs (not ended, not being ended).
    pub(crate) runs: bool,
    /// The most levels of delegation the run allows.
    pub(crate) max_depth: u32,
    /// Whether the run can resolve children at all.
    pub(crate) resolver: bool,
}

/// Why a delegation is refused before anything is resolved, if it is.
pub(crate) fn refusal(asking: Asking<'_>) -> Option<String> {
    let depth = AgentName::parse(asking.name).depth();
    if !asking.runs {
        Some("the delegating agent is ending".to_owned())
    } else if depth + 1 > asking.max_depth {
        Some(format!(
            "delegation depth limit reached: `{}` is at depth {depth} and this run allows at most {} levels of delegation",
            asking.name, asking.max_depth
        ))
    } else if !asking.resolver {
        Some("delegation is not available in this run (no agent resolver)".to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_numbered_per_parent() {
        let mut d = Delegations::<()>::default();
        assert_eq!(d.next_child_name(0, "lead", "test-gen"), "lead/test-gen#1");
        assert_eq!(d.next_child_name(0, "lead", "docs"), "lead/docs#2");
        assert_eq!(d.next_child_name(1, "other", "docs"), "other/docs#1");
    }

    #[test]
    fn a_child_report_port_is_taken_once() {
        let mut d = Delegations::default();
        d.adopt(0, 3, "port");
        d.adopt(0, 4, "port 2");
        assert_eq!(d.children_of(0), [3, 4]);
        assert_eq!(d.children_of(1), [] as [usize; 0]);
        assert_eq!(d.take_port(3), Some("port"));
        assert_eq!(d.take_port(3), None);
    }

    fn asking(name: &str) -> Asking<'_> {
        Asking {
            name,
            runs: true,
            max_depth: 2,
            resolver: true,
        }
    }

    #[test]
    fn a_delegation_is_refused_beyond_the_depth_limit() {
        assert_eq!(refusal(asking("lead/a#1")), None);
        let why = refusal(asking("lead/a#1/b#1")).unwrap();
        assert!(why.contains("depth limit reached"), "{why}");
        assert!(why.contains("at depth 2"), "{why}");
    }

    #[test]
    fn an_ending_agent_or_a_run_without_resolver_delegates_nothing() {
        let ending = Asking {
            runs: false,
            ..asking("lead")
        };
        assert!(refusal(ending).unwrap().contains("ending"));
        let alone = Asking {
            resolver: false,
            ..asking("lead")
        };
        assert!(refusal(alone).unwrap().contains("no agent resolver"));
    }
}
