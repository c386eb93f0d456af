//! The queue of agents waiting for a place under `max_concurrency`, as pure data.
//!
//! The run's own agents are queued in order at the start; a place is one of the run's own
//! agents started and not yet final (delegated agents take none: their parent waits for
//! them, so queueing them could deadlock). The shell asks for the next agent after every
//! message, with the number of places taken.

use std::collections::VecDeque;

/// Agents waiting to start, by slot index, first come first served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartQueue {
    waiting: VecDeque<usize>,
    max_concurrency: usize,
}

impl StartQueue {
    /// Slots `0..agents` waiting, at most `max_concurrency` (at least 1) running at once.
    pub(crate) fn new(agents: usize, max_concurrency: usize) -> Self {
        Self {
            waiting: (0..agents).collect(),
            max_concurrency: max_concurrency.max(1),
        }
    }

    /// Whether no agent waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The next agent to start while `running` places are taken, if a place is free.
    pub(crate) fn next(&mut self, running: usize) -> Option<usize> {
        if running >= self.max_concurrency {
            return None;
        }
        self.waiting.pop_front()
    }

    /// Forgets every waiting agent (the run is cancelled: they end without starting).
    pub(crate) fn clear(&mut self) {
        self.waiting.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_start_in_order_while_places_are_free() {
        let mut q = StartQueue::new(3, 2);
        assert_eq!(q.next(0), Some(0));
        assert_eq!(q.next(1), Some(1));
        assert_eq!(q.next(2), None, "both places are taken");
        assert_eq!(q.next(1), Some(2));
        assert!(q.is_empty());
        assert_eq!(q.next(0), None);
    }

    #[test]
    fn a_limit_of_zero_still_runs_one_agent_at_a_time() {
        let mut q = StartQueue::new(2, 0);
        assert_eq!(q.next(0), Some(0));
        assert_eq!(q.next(1), None);
    }

    #[test]
    fn a_cleared_queue_starts_nothing() {
        let mut q = StartQueue::new(2, 5);
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.next(0), None);
    }
}
