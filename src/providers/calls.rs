//! Assembling streamed tool calls, keyed by whatever identifies a call.
//!
//! Every protocol streams a tool call in pieces: a first piece with its id and name, then
//! argument text, sometimes a final piece with the whole arguments. Which field says what
//! call a piece belongs to depends on the protocol and on the server: Chat Completions
//! sends `index`; OpenAI's Responses sends `output_index` and `item_id`, llama.cpp's server
//! only `item_id` (and `item.id` / `call_id` on the items); Anthropic sends the block
//! `index`. A piece names its call by the [`Key`]s it carries, and belongs to the call that
//! already has any of them; keys of different kinds never match each other. A piece with
//! a key no call has yet starts a new call; a piece without any key continues the latest
//! call (a server that names nothing can only be sending one call at a time).
//!
//! Calls come out in the order of their position keys (`index`, `output_index`) when
//! every call has one, else in the order they started.

use codex_actors::model::ToolCall;

use super::protocol::parse_arguments;

/// One way a piece names its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// Chat Completions' `tool_calls[].index`, Anthropic's block `index`.
    Index(u64),
    /// Responses' `output_index`.
    OutputIndex(u64),
    /// Responses' item id (`item_id`, `item.id`).
    ItemId(String),
    /// The call id the tool result will refer to (`call_id`, `id`).
    CallId(String),
}

impl Key {
    fn position(&self) -> Option<u64> {
        match self {
            Key::Index(i) | Key::OutputIndex(i) => Some(*i),
            Key::ItemId(_) | Key::CallId(_) => None,
        }
    }
}

/// What one piece adds to its call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Piece {
    /// The call's id, if this piece says it.
    pub id: Option<String>,
    /// The tool's name, if this piece says it.
    pub name: Option<String>,
    /// More argument text.
    pub delta: Option<String>,
    /// The whole arguments (a final piece): replaces what the deltas built.
    pub arguments: Option<String>,
}

#[derive(Debug, Default)]
struct Partial {
    keys: Vec<Key>,
    id: String,
    name: String,
    arguments: String,
}

/// The calls of one response being assembled; see the module docs.
#[derive(Debug, Default)]
pub struct Calls {
    calls: Vec<Partial>,
}

impl Calls {
    /// Adds `piece` to the call that `keys` name (a new one if none has them yet).
    pub fn add(&mut self, keys: &[Key], piece: Piece) {
        let call = self.call_for(keys);
        for k in keys {
            if !call.keys.contains(k) {
                call.keys.push(k.clone());
            }
        }
        if let Some(id) = piece.id.filter(|i| !i.is_empty()) {
            call.id = id;
        }
        if let Some(name) = piece.name.filter(|n| !n.is_empty()) {
            call.name = name;
        }
        if let Some(d) = piece.delta {
            call.arguments.push_str(&d);
        }
        if let Some(whole) = piece.arguments.filter(|a| !a.is_empty()) {
            call.arguments = whole;
        }
    }

    fn find(&self, keys: &[Key]) -> Option<usize> {
        self.calls
            .iter()
            .position(|c| keys.iter().any(|k| c.keys.contains(k)))
    }

    fn call_for(&mut self, keys: &[Key]) -> &mut Partial {
        let at = match self.find(keys) {
            Some(i) => i,
            None if keys.is_empty() && !self.calls.is_empty() => self.calls.len() - 1,
            None => {
                self.calls.push(Partial::default());
                self.calls.len() - 1
            }
        };
        &mut self.calls[at]
    }

    /// The calls, in order (see the module docs); ids made up as `{prefix}{n}` for
    /// servers that send none.
    pub fn take(&mut self, id_prefix: &str) -> Vec<ToolCall> {
        let mut calls = std::mem::take(&mut self.calls);
        let position = |c: &Partial| c.keys.iter().find_map(Key::position);
        if calls.iter().all(|c| position(c).is_some()) {
            calls.sort_by_key(|c| position(c));
        }
        calls
            .into_iter()
            .enumerate()
            .map(|(n, c)| ToolCall {
                id: if c.id.is_empty() {
                    format!("{id_prefix}{n}")
                } else {
                    c.id
                },
                name: c.name,
                arguments: parse_arguments(&c.arguments),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn start(id: &str, name: &str) -> Piece {
        Piece {
            id: Some(id.into()),
            name: Some(name.into()),
            ..Piece::default()
        }
    }

    fn delta(d: &str) -> Piece {
        Piece {
            delta: Some(d.into()),
            ..Piece::default()
        }
    }

    #[test]
    fn calls_named_only_by_item_id_stay_apart() {
        // llama.cpp's server: items with `id` and `call_id`, deltas with `item_id` only.
        let mut calls = Calls::default();
        for n in 0..3 {
            let keys = [
                Key::ItemId(format!("fc_{n}")),
                Key::CallId(format!("call_{n}")),
            ];
            calls.add(&keys, start(&format!("call_{n}"), "grep"));
        }
        for n in 0..3 {
            calls.add(&[Key::ItemId(format!("fc_{n}"))], delta("{\"pattern\":"));
        }
        for n in 0..3 {
            calls.add(
                &[Key::ItemId(format!("fc_{n}"))],
                delta(&format!("\"p{n}\"}}")),
            );
        }
        let got = calls.take("call_");
        assert_eq!(got.len(), 3);
        for (n, c) in got.iter().enumerate() {
            assert_eq!(c.id, format!("call_{n}"));
            assert_eq!(c.arguments, json!({"pattern": format!("p{n}")}));
        }
    }

    #[test]
    fn a_final_piece_replaces_the_arguments_built_so_far() {
        let mut calls = Calls::default();
        let keys = [Key::ItemId("fc".into())];
        calls.add(&keys, start("c", "read_file"));
        calls.add(&keys, delta("{\"pa"));
        let done = Piece {
            arguments: Some("{\"path\":\"a\"}".into()),
            ..Piece::default()
        };
        calls.add(&keys, done);
        assert_eq!(calls.take("x")[0].arguments, json!({"path": "a"}));
    }

    #[test]
    fn pieces_without_keys_continue_the_latest_call() {
        let mut calls = Calls::default();
        calls.add(&[], start("c", "read_file"));
        calls.add(&[], delta("{}"));
        let got = calls.take("x");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].arguments, json!({}));
    }

    /// Which keys each kind of server sends on a call's first piece and on the others.
    #[derive(Debug, Clone, Copy)]
    enum Server {
        ChatIndex,
        ResponsesOpenAi,
        ResponsesItemIdOnly,
        AnthropicIndex,
    }

    fn keys(server: Server, n: usize, first: bool) -> Vec<Key> {
        let n64 = n as u64;
        match server {
            Server::ChatIndex | Server::AnthropicIndex => vec![Key::Index(n64)],
            Server::ResponsesOpenAi => vec![Key::OutputIndex(n64), Key::ItemId(format!("fc_{n}"))],
            Server::ResponsesItemIdOnly if first => {
                vec![
                    Key::ItemId(format!("fc_{n}")),
                    Key::CallId(format!("call_{n}")),
                ]
            }
            Server::ResponsesItemIdOnly => vec![Key::ItemId(format!("fc_{n}"))],
        }
    }

    /// Calls (their argument values) and, for each, the text split into pieces.
    fn calls_strategy() -> impl Strategy<Value = Vec<(serde_json::Value, Vec<usize>)>> {
        proptest::collection::vec(
            (
                "[a-z/\\.]{0,12}",
                0u32..1000,
                proptest::collection::vec(1usize..6, 0..8),
            ),
            1..6,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(path, limit, cuts)| (json!({"path": path, "limit": limit}), cuts))
                .collect()
        })
    }

    proptest! {
        /// However the pieces of several calls interleave (each call's own pieces in
        /// order, its first piece first), every call comes out whole: its id, name and
        /// full arguments, none merged with another, for every kind of server.
        #[test]
        fn interleaved_pieces_assemble_into_the_calls_sent(
            calls in calls_strategy(),
            order_seed in proptest::collection::vec(0usize..1000, 0..200),
            server in prop_oneof![
                Just(Server::ChatIndex),
                Just(Server::ResponsesOpenAi),
                Just(Server::ResponsesItemIdOnly),
                Just(Server::AnthropicIndex),
            ],
        ) {
            // Each call's pieces: the start, then its argument text cut at `cuts`.
            let mut queues: Vec<Vec<Piece>> = calls
                .iter()
                .enumerate()
                .map(|(n, (args, cuts))| {
                    let text = args.to_string();
                    let mut pieces = vec![start(&format!("call_{n}"), "read_file")];
                    let mut at = 0;
                    for c in cuts {
                        let end = (at + c).min(text.len());
                        pieces.push(delta(&text[at..end]));
                        at = end;
                    }
                    pieces.push(delta(&text[at..]));
                    pieces.reverse(); // popped from the end
                    pieces
                })
                .collect();
            let mut assembled = Calls::default();
            let mut first_seen = Vec::new();
            let mut seed = order_seed.into_iter().cycle();
            while queues.iter().any(|q| !q.is_empty()) {
                let live: Vec<usize> = (0..queues.len()).filter(|&i| !queues[i].is_empty()).collect();
                let n = live[seed.next().unwrap_or(0) % live.len()];
                let first = !first_seen.contains(&n);
                if first {
                    first_seen.push(n);
                }
                let piece = queues[n].pop().unwrap();
                assembled.add(&keys(server, n, first), piece);
            }
            let got = assembled.take("x");
            prop_assert_eq!(got.len(), calls.len());
            // Position keys give the calls' own order; identity keys the order they began.
            let order: Vec<usize> = match server {
                Server::ResponsesItemIdOnly => first_seen,
                _ => (0..calls.len()).collect(),
            };
            for (c, n) in got.iter().zip(order) {
                prop_assert_eq!(&c.id, &format!("call_{n}"));
                prop_assert_eq!(&c.name, "read_file");
                prop_assert_eq!(&c.arguments, &calls[n].0);
            }
        }
    }
}
