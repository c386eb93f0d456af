use super::*;
use proptest::prelude::*;

fn id(agent: &str, attempt: u32, turn: u32) -> ReservationId {
    ReservationId {
        agent: agent.into(),
        attempt,
        turn,
    }
}

fn req(agent: &str, turn: u32, prompt: u64, out: u64) -> ReserveRequest {
    ReserveRequest {
        id: id(agent, 1, turn),
        prompt_tokens: prompt,
        max_output_tokens: out,
        min_output_tokens: 10,
    }
}

fn ledger(global: u64, agents: &[(&str, u64)]) -> BudgetLedger {
    let mut l = BudgetLedger::new(global);
    for (a, limit) in agents {
        l.register(a, *limit).unwrap();
    }
    l
}

fn granted(o: ReserveOutcome) -> Grant {
    match o {
        ReserveOutcome::Granted(g) => g,
        ReserveOutcome::Denied(d) => panic!("denied: {d:?}"),
    }
}

#[test]
fn reserve_grants_the_worst_case_when_it_fits() {
    let mut l = ledger(10_000, &[("a", 5_000)]);
    let g = granted(l.reserve(&req("a", 0, 300, 1_000)).unwrap());
    assert_eq!(
        (g.granted, g.max_output_tokens, g.available),
        (1_300, 1_000, 3_700)
    );
}

#[test]
fn grant_is_clamped_to_what_remains() {
    let mut l = ledger(10_000, &[("a", 1_000)]);
    let g = granted(l.reserve(&req("a", 0, 300, 4_096)).unwrap());
    assert_eq!((g.granted, g.max_output_tokens), (1_000, 700));
}

#[test]
fn reservation_is_denied_when_not_even_the_minimum_fits() {
    let mut l = ledger(10_000, &[("a", 305)]);
    let o = l.reserve(&req("a", 0, 300, 100)).unwrap();
    assert_eq!(
        o,
        ReserveOutcome::Denied(Denial {
            available: 305,
            needed: 310,
            global: false,
            wait: false,
        })
    );
    assert_eq!(l.account("a").unwrap().reserved, 0);
}

#[test]
fn global_limit_caps_every_agent() {
    let mut l = ledger(1_500, &[("a", 1_000), ("b", 1_000)]);
    granted(l.reserve(&req("a", 0, 100, 900)).unwrap());
    let g = granted(l.reserve(&req("b", 0, 100, 900)).unwrap());
    assert_eq!(g.granted, 500);
    let o = l.reserve(&req("b", 1, 100, 900)).unwrap();
    assert!(matches!(
        o,
        ReserveOutcome::Denied(Denial { global: true, .. })
    ));
}

#[test]
fn a_denial_says_to_wait_when_siblings_in_flight_hold_the_missing_tokens() {
    let mut l = ledger(1_000, &[("a", 1_000), ("b", 1_000)]);
    granted(l.reserve(&req("a", 0, 100, 900)).unwrap());
    let o = l.reserve(&req("b", 0, 100, 900)).unwrap();
    assert!(
        matches!(o, ReserveOutcome::Denied(Denial { wait: true, .. })),
        "{o:?}"
    );
    l.commit(&id("a", 1, 0), 200).unwrap();
    granted(l.reserve(&req("b", 0, 100, 900)).unwrap());
}

#[test]
fn a_denial_does_not_say_to_wait_when_the_tokens_are_spent() {
    let mut l = ledger(1_000, &[("a", 1_000), ("b", 1_000)]);
    granted(l.reserve(&req("a", 0, 100, 900)).unwrap());
    l.commit(&id("a", 1, 0), 995).unwrap();
    let o = l.reserve(&req("b", 0, 100, 900)).unwrap();
    assert!(
        matches!(o, ReserveOutcome::Denied(Denial { wait: false, .. })),
        "{o:?}"
    );
}

#[test]
fn commit_charges_usage_and_releases_the_rest() {
    let mut l = ledger(10_000, &[("a", 5_000)]);
    granted(l.reserve(&req("a", 0, 300, 1_000)).unwrap());
    let s = l.commit(&id("a", 1, 0), 500).unwrap();
    assert_eq!(
        (s.charged, s.released, s.overrun, s.available),
        (500, 800, 0, 4_500)
    );
    let acc = l.account("a").unwrap();
    assert_eq!((acc.reserved, acc.committed), (0, 500));
}

#[test]
fn usage_beyond_the_grant_is_recorded_as_overrun() {
    let mut l = ledger(10_000, &[("a", 5_000)]);
    granted(l.reserve(&req("a", 0, 100, 100)).unwrap());
    let s = l.commit(&id("a", 1, 0), 350).unwrap();
    assert_eq!((s.charged, s.overrun, s.released), (200, 150, 0));
    assert_eq!(l.account("a").unwrap().used(), 350);
    assert_eq!(l.global().overrun, 150);
}

#[test]
fn reserve_and_commit_are_idempotent() {
    let mut l = ledger(10_000, &[("a", 5_000)]);
    let g1 = granted(l.reserve(&req("a", 0, 300, 1_000)).unwrap());
    let g2 = granted(l.reserve(&req("a", 0, 300, 1_000)).unwrap());
    assert_eq!(g1.granted, g2.granted);
    assert_eq!(l.account("a").unwrap().reserved, 1_300);
    let s1 = l.commit(&id("a", 1, 0), 400).unwrap();
    let s2 = l.commit(&id("a", 1, 0), 400).unwrap();
    assert_eq!(s1, s2);
    assert_eq!(l.account("a").unwrap().committed, 400);
}

#[test]
fn release_returns_open_reservations_once() {
    let mut l = ledger(10_000, &[("a", 5_000), ("b", 5_000)]);
    granted(l.reserve(&req("a", 0, 100, 400)).unwrap());
    granted(l.reserve(&req("b", 0, 100, 400)).unwrap());
    assert_eq!(l.release_attempts("a", 1).unwrap(), 500);
    assert_eq!(l.release_attempts("a", 1).unwrap(), 0);
    assert_eq!(l.account("a").unwrap().reserved, 0);
    assert_eq!(l.global().reserved, 500);
}

#[test]
fn releasing_an_attempt_spares_the_attempt_that_replaced_it() {
    let mut l = ledger(10_000, &[("a", 5_000)]);
    granted(l.reserve(&req("a", 0, 100, 400)).unwrap());
    let next = ReserveRequest {
        id: id("a", 2, 0),
        ..req("a", 0, 100, 200)
    };
    granted(l.reserve(&next).unwrap());
    assert_eq!(l.release_attempts("a", 1).unwrap(), 500);
    assert_eq!(l.account("a").unwrap().reserved, 300);
    l.commit(&id("a", 2, 0), 250).unwrap();
}

#[test]
fn releasing_an_agent_spares_agents_whose_names_extend_its_own() {
    let mut l = ledger(10_000, &[("a", 3_000), ("a-2", 3_000), ("b", 3_000)]);
    for (agent, turn) in [("a", 0), ("a", 1), ("a-2", 0), ("b", 0)] {
        granted(l.reserve(&req(agent, turn, 100, 400)).unwrap());
    }
    l.commit(&id("a", 1, 0), 300).unwrap();
    l.commit(&id("a-2", 1, 0), 300).unwrap();
    assert_eq!(l.release_attempts("a", 1).unwrap(), 500);
    assert_eq!(l.account("a-2").unwrap().reserved, 0);
    assert_eq!(l.account("b").unwrap().reserved, 500);
    // a-2's settlement is still there to answer a retried commit; a's is forgotten.
    assert_eq!(l.commit(&id("a-2", 1, 0), 300).unwrap().charged, 300);
    assert!(l.commit(&id("a", 1, 0), 300).is_err());
}

#[test]
fn replaying_the_ops_on_a_copy_gives_the_same_ledger() {
    let mut l = ledger(10_000, &[("a", 5_000)]);
    let mut copy = l.clone();
    let ops = [
        LedgerOp::Reserve(req("a", 0, 100, 400)),
        LedgerOp::Commit(id("a", 1, 0), 300),
        LedgerOp::Reserve(req("a", 1, 100, 400)),
        LedgerOp::Commit(id("nobody", 1, 0), 1),
        LedgerOp::Release("a".into(), 1),
    ];
    for op in &ops {
        l.apply(op);
        copy.apply(op);
    }
    assert_eq!(l, copy);
    assert_eq!(l.account("a").unwrap().committed, 300);
}

#[test]
fn committing_a_released_reservation_is_an_error() {
    let mut l = ledger(10_000, &[("a", 5_000)]);
    granted(l.reserve(&req("a", 0, 100, 400)).unwrap());
    l.release_attempts("a", 1).unwrap();
    let e = l.commit(&id("a", 1, 0), 10).unwrap_err();
    assert!(matches!(e, LedgerError::UnknownReservation(_)));
}

#[test]
fn unknown_agents_are_errors() {
    let mut l = ledger(10_000, &[]);
    assert!(matches!(
        l.reserve(&req("x", 0, 1, 1)),
        Err(LedgerError::UnknownAgent(_))
    ));
    l.register("x", 1).unwrap();
    assert!(matches!(
        l.register("x", 1),
        Err(LedgerError::DuplicateAgent(_))
    ));
}

/// One step of a random interleaving.
#[derive(Debug, Clone)]
enum Op {
    Reserve {
        agent: usize,
        prompt: u64,
        out: u64,
    },
    Commit {
        agent: usize,
        used_per_mille: u64,
        over: bool,
    },
    Crash {
        agent: usize,
    },
    Restart {
        agent: usize,
    },
    Retry {
        agent: usize,
    },
}

fn op(agents: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..agents, 0u64..800, 0u64..2_000)
            .prop_map(|(agent, prompt, out)| Op::Reserve { agent, prompt, out }),
        4 => (0..agents, 0u64..=1_000, proptest::bool::weighted(0.05))
            .prop_map(|(agent, used_per_mille, over)| Op::Commit { agent, used_per_mille, over }),
        1 => (0..agents).prop_map(|agent| Op::Crash { agent }),
        1 => (0..agents).prop_map(|agent| Op::Restart { agent }),
        1 => (0..agents).prop_map(|agent| Op::Retry { agent }),
    ]
}

/// What each simulated agent has open: (attempt, next turn, open reservation's turn and grant).
#[derive(Debug, Clone, Default)]
struct Sim {
    attempt: u32,
    turn: u32,
    open: Vec<(ReservationId, u64, ReserveRequest)>,
}

fn check_invariants(l: &BudgetLedger) -> Result<(), TestCaseError> {
    let g = l.global();
    prop_assert!(
        g.reserved + g.committed <= g.limit,
        "global over limit: {g:?}"
    );
    let (mut reserved, mut committed, mut overrun) = (0, 0, 0);
    for (name, a) in l.accounts() {
        prop_assert!(
            a.reserved + a.committed <= a.limit,
            "{name} over limit: {a:?}"
        );
        reserved += a.reserved;
        committed += a.committed;
        overrun += a.overrun;
    }
    prop_assert_eq!(
        (reserved, committed, overrun),
        (g.reserved, g.committed, g.overrun)
    );
    let open: u64 = l.open.values().map(|o| o.granted).sum();
    prop_assert_eq!(open, g.reserved);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random interleavings of reserve / commit / release / crash / restart / retried calls
    /// across many agents never break the ledger's invariants.
    #[test]
    fn ledger_invariants_hold_under_any_interleaving(
        limits in proptest::collection::vec(0u64..6_000, 1..8),
        global in 0u64..20_000,
        ops in proptest::collection::vec(op(8), 1..200),
    ) {
        let names: Vec<String> = (0..limits.len()).map(|i| format!("agent-{i}")).collect();
        let mut l = BudgetLedger::new(global);
        for (n, lim) in names.iter().zip(&limits) {
            l.register(n, *lim).unwrap();
        }
        let mut sims = vec![Sim { attempt: 1, ..Sim::default() }; names.len()];
        // The supervisor's copy, kept by replaying each change.
        let mut shadow = l.clone();
        for op in ops {
            match op {
                Op::Reserve { agent, prompt, out } => {
                    let Some(name) = names.get(agent) else { continue };
                    let sim = &mut sims[agent];
                    let before = l.available(name).unwrap();
                    let r = ReserveRequest {
                        id: ReservationId { agent: name.clone(), attempt: sim.attempt, turn: sim.turn },
                        prompt_tokens: prompt,
                        max_output_tokens: out,
                        min_output_tokens: 1,
                    };
                    sim.turn += 1;
                    shadow.apply(&LedgerOp::Reserve(r.clone()));
                    match l.reserve(&r).unwrap() {
                        ReserveOutcome::Granted(g) => {
                            prop_assert!(g.granted <= before);
                            prop_assert!(g.granted <= prompt + out);
                            prop_assert_eq!(g.max_output_tokens, g.granted - prompt);
                            sim.open.push((r.id.clone(), g.granted, r));
                        }
                        ReserveOutcome::Denied(d) => {
                            prop_assert!(d.available < d.needed);
                            // Waiting is only advised when other agents hold reservations.
                            if d.wait {
                                let own = l.account(name).unwrap().reserved;
                                prop_assert!(l.global().reserved > own);
                            }
                        }
                    }
                }
                Op::Commit { agent, used_per_mille, over } => {
                    let Some(sim) = sims.get_mut(agent) else { continue };
                    let Some((rid, granted, _)) = sim.open.pop() else { continue };
                    let used = granted * used_per_mille / 1_000 + if over { 1 + granted / 2 } else { 0 };
                    let s = l.commit(&rid, used).unwrap();
                    shadow.apply(&LedgerOp::Commit(rid.clone(), used));
                    prop_assert_eq!(s.charged, used.min(granted));
                    prop_assert_eq!(s.released, granted - s.charged);
                    prop_assert_eq!(s.overrun, used - s.charged);
                }
                Op::Crash { agent } | Op::Restart { agent } => {
                    let Some(name) = names.get(agent) else { continue };
                    let sim = &mut sims[agent];
                    let expected: u64 = sim.open.iter().map(|(_, g, _)| g).sum();
                    prop_assert_eq!(l.release_attempts(name, sim.attempt).unwrap(), expected);
                    shadow.apply(&LedgerOp::Release(name.clone(), sim.attempt));
                    sim.open.clear();
                    if matches!(op, Op::Restart { .. }) {
                        sim.attempt += 1;
                        sim.turn = 0;
                    }
                }
                Op::Retry { agent } => {
                    // A reply was lost: the same reserve is asked again and changes nothing.
                    let Some(sim) = sims.get(agent) else { continue };
                    let Some((_, granted, r)) = sim.open.last() else { continue };
                    let before = l.global();
                    shadow.apply(&LedgerOp::Reserve(r.clone()));
                    match l.reserve(r).unwrap() {
                        ReserveOutcome::Granted(g) => prop_assert_eq!(g.granted, *granted),
                        d => prop_assert!(false, "retry denied: {d:?}"),
                    }
                    prop_assert_eq!(before, l.global());
                }
            }
            check_invariants(&l)?;
            prop_assert_eq!(&shadow, &l);
        }
    }
}
