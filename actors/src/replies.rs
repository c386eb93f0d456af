//! Answers to redelivered requests: a remote attempt's requests cross a network that may
//! deliver one twice (a request whose reply was lost is sent again with the same sequence
//! number), and a reservation, commit or audit record must never be applied twice. The
//! receiving side keeps the answers of the last [`ReplyCache::WINDOW`] requests by sequence
//! number and gives a repeated request the answer it already gave.
//!
//! The sender numbers its requests 1, 2, 3, ... and has one in flight at a time, so a
//! repeat is always of a recent number; one older than the window cannot be answered again
//! and is refused ([`Seen::Forgotten`]), never served a second time.

use std::collections::VecDeque;

/// What the cache knows of a sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen<T> {
    /// Not seen: serve it, then [`ReplyCache::insert`] the answer.
    New,
    /// Seen: this is the answer it got.
    Answered(T),
    /// Seen, but too long ago to repeat its answer: refuse it.
    Forgotten,
}

/// The answers to the last [`ReplyCache::WINDOW`] requests of one sender.
#[derive(Debug, Clone)]
pub struct ReplyCache<T> {
    answers: VecDeque<(u64, T)>,
    /// The highest sequence number answered.
    highest: u64,
}

impl<T> Default for ReplyCache<T> {
    fn default() -> Self {
        Self {
            answers: VecDeque::new(),
            highest: 0,
        }
    }
}

impl<T: Clone> ReplyCache<T> {
    /// How many answers are kept.
    pub const WINDOW: usize = 64;

    /// Whether `seq` was answered, and how.
    pub fn seen(&self, seq: u64) -> Seen<T> {
        if let Some((_, answer)) = self.answers.iter().find(|(s, _)| *s == seq) {
            return Seen::Answered(answer.clone());
        }
        // Numbers are sent in order, one at a time: a lower one was served before.
        if seq <= self.highest {
            return Seen::Forgotten;
        }
        Seen::New
    }

    /// Keeps the answer to `seq`.
    pub fn insert(&mut self, seq: u64, answer: T) {
        if self.answers.len() == Self::WINDOW {
            self.answers.pop_front();
        }
        self.answers.push_back((seq, answer));
        self.highest = self.highest.max(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_new_number_is_served_and_a_repeat_gets_the_same_answer() {
        let mut cache = ReplyCache::default();
        assert_eq!(cache.seen(1), Seen::New);
        cache.insert(1, "granted 100");
        assert_eq!(cache.seen(1), Seen::Answered("granted 100"));
        assert_eq!(cache.seen(2), Seen::New);
    }

    #[test]
    fn a_repeat_older_than_the_window_is_forgotten_not_served_again() {
        let mut cache = ReplyCache::default();
        for seq in 1..=(ReplyCache::<u64>::WINDOW as u64 + 1) {
            cache.insert(seq, seq);
        }
        assert_eq!(cache.seen(1), Seen::Forgotten);
        assert_eq!(cache.seen(2), Seen::Answered(2));
    }

    proptest! {
        /// Whatever the order of first sends and repeats, a request is served at most once,
        /// and every repeat within the window gets the answer of the first.
        #[test]
        fn no_request_is_served_twice(
            repeats in proptest::collection::vec((1u64..200, 0u64..80), 1..400)
        ) {
            let mut cache = ReplyCache::default();
            let mut served = std::collections::BTreeMap::new();
            let mut next = 1u64;
            for (fresh, back) in repeats {
                // Either a new request, or a repeat of one sent `back` requests ago.
                let seq = if fresh % 3 == 0 || next == 1 { next } else { next.saturating_sub(back).max(1) };
                match cache.seen(seq) {
                    Seen::New => {
                        prop_assert!(!served.contains_key(&seq), "{seq} served twice");
                        served.insert(seq, seq * 10);
                        cache.insert(seq, seq * 10);
                        if seq == next { next += 1; }
                    }
                    Seen::Answered(a) => prop_assert_eq!(Some(&a), served.get(&seq)),
                    Seen::Forgotten => prop_assert!(served.contains_key(&seq)),
                }
            }
        }
    }
}
