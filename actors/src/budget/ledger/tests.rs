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
fn ending_an_attempt_charges_its_calls_in_flight_in_full_once() {
    let mut l = ledger(10_000, &[("a", 5_000), ("b", 5_000)]);
    granted(l.reserve(&req("a", 0, 100, 400)).unwrap());
    granted(l.reserve(&req("b", 0, 100, 400)).unwrap());
    assert_eq!(l.end_attempts("a", 1).unwrap(), 500);
    assert_eq!(l.end_attempts("a", 1).unwrap(), 0);
    assert_eq!(l.account("a").unwrap().reserved, 0);
    assert_eq!(l.account("a").unwrap().committed, 500);
    assert_eq!(l.global().reserved, 500);
    assert_eq!(l.global().committed, 500);
}

#[test]
fn an_overrun_counts_against_what_may_still_be_reserved() {
    let mut l = ledger(10_000, &[("a", 1_000)]);
    granted(l.reserve(&req("a", 0, 100, 400)).unwrap());
    let s = l.commit(&id("a", 1, 0), 600).unwrap();
    assert_eq!((s.charged, s.overrun), (500, 100));
    assert_eq!(s.available, 400);
    assert_eq!(l.available("a").unwrap(), 400);
}

#[test]
fn ending_an_attempt_spares_the_attempt_that_replaced_it() {
    let mut l = ledger(10_000, &[("a", 5_000)]);
    granted(l.reserve(&req("a", 0, 100, 400)).unwrap());
    let next = ReserveRequest {
        id: id("a", 2, 0),
        ..req("a", 0, 100, 200)
    };
    granted(l.reserve(&next).unwrap());
    assert_eq!(l.end_attempts("a", 1).unwrap(), 500);
    assert_eq!(l.account("a").unwrap().reserved, 300);
    l.commit(&id("a", 2, 0), 250).unwrap();
}

#[test]
fn ending_an_agent_spares_agents_whose_names_extend_its_own() {
    let mut l = ledger(10_000, &[("a", 3_000), ("a-2", 3_000), ("b", 3_000)]);
    for (agent, turn) in [("a", 0), ("a", 1), ("a-2", 0), ("b", 0)] {
        granted(l.reserve(&req(agent, turn, 100, 400)).unwrap());
    }
    l.commit(&id("a", 1, 0), 300).unwrap();
    l.commit(&id("a-2", 1, 0), 300).unwrap();
    assert_eq!(l.end_attempts("a", 1).unwrap(), 500);
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
        LedgerOp::EndAttempts("a".into(), 1),
    ];
    for op in &ops {
        l.apply(op);
        copy.apply(op);
    }
    assert_eq!(l, copy);
    assert_eq!(l.account("a").unwrap().committed, 800);
}

#[test]
fn committing_after_the_attempt_ended_is_an_error() {
    let mut l = ledger(10_000, &[("a", 5_000)]);
    granted(l.reserve(&req("a", 0, 100, 400)).unwrap());
    l.end_attempts("a", 1).unwrap();
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

fn carve(parent: &str, child: &str, wanted: u64) -> CarveRequest {
    CarveRequest {
        parent: parent.into(),
        child: child.into(),
        wanted,
        min: 100,
    }
}

fn carved(o: CarveOutcome) -> u64 {
    match o {
        CarveOutcome::Carved(e) => e,
        CarveOutcome::Denied(d) => panic!("denied: {d:?}"),
    }
}

#[test]
fn a_carved_envelope_is_held_by_the_parent_and_leaves_the_run_total_unchanged() {
    let mut l = ledger(10_000, &[("p", 5_000)]);
    assert_eq!(carved(l.carve(&carve("p", "p/c", 2_000)).unwrap()), 2_000);
    assert_eq!(l.available("p").unwrap(), 3_000);
    assert_eq!(l.available("p/c").unwrap(), 2_000);
    assert_eq!(l.global().limit, 10_000);
    assert_eq!(l.global().reserved, 2_000);
    assert_eq!(l.parent("p/c"), Some("p"));
}

#[test]
fn an_envelope_is_clamped_to_what_the_parent_has_left() {
    let mut l = ledger(10_000, &[("p", 1_000)]);
    granted(l.reserve(&req("p", 0, 100, 300)).unwrap());
    l.commit(&id("p", 1, 0), 400).unwrap();
    assert_eq!(carved(l.carve(&carve("p", "p/c", 5_000)).unwrap()), 600);
}

#[test]
fn an_envelope_is_also_clamped_by_the_run_budget() {
    let mut l = ledger(700, &[("p", 1_000)]);
    assert_eq!(carved(l.carve(&carve("p", "p/c", 5_000)).unwrap()), 700);
}

#[test]
fn carving_is_denied_when_the_parent_has_less_than_the_minimum() {
    let mut l = ledger(10_000, &[("p", 150)]);
    granted(l.reserve(&req("p", 0, 10, 50)).unwrap());
    let o = l.carve(&carve("p", "p/c", 1_000)).unwrap();
    assert!(
        matches!(
            o,
            CarveOutcome::Denied(Denial {
                available: 90,
                needed: 100,
                ..
            })
        ),
        "{o:?}"
    );
    assert!(l.account("p/c").is_none());
}

#[test]
fn carving_the_same_child_twice_returns_the_same_envelope() {
    let mut l = ledger(10_000, &[("p", 5_000)]);
    carved(l.carve(&carve("p", "p/c", 2_000)).unwrap());
    assert_eq!(carved(l.carve(&carve("p", "p/c", 2_000)).unwrap()), 2_000);
    assert_eq!(l.account("p").unwrap().reserved, 2_000);
}

#[test]
fn a_child_cannot_reserve_beyond_its_envelope() {
    let mut l = ledger(10_000, &[("p", 5_000)]);
    carved(l.carve(&carve("p", "p/c", 500)).unwrap());
    let g = granted(l.reserve(&req("p/c", 0, 100, 4_000)).unwrap());
    assert_eq!(g.granted, 500);
    let o = l.reserve(&req("p/c", 1, 100, 100)).unwrap();
    assert!(
        matches!(o, ReserveOutcome::Denied(Denial { wait: false, .. })),
        "{o:?}"
    );
}

#[test]
fn a_childs_usage_is_charged_to_its_parent_and_the_run() {
    let mut l = ledger(10_000, &[("p", 5_000)]);
    carved(l.carve(&carve("p", "p/c", 2_000)).unwrap());
    granted(l.reserve(&req("p/c", 0, 100, 900)).unwrap());
    l.commit(&id("p/c", 1, 0), 700).unwrap();
    assert_eq!(l.account("p/c").unwrap().used(), 700);
    let p = l.account("p").unwrap();
    assert_eq!((p.reserved, p.committed), (1_300, 700));
    assert_eq!((l.global().reserved, l.global().committed), (1_300, 700));
}

#[test]
fn closing_a_child_returns_the_rest_of_its_envelope_to_the_parent() {
    let mut l = ledger(10_000, &[("p", 5_000)]);
    carved(l.carve(&carve("p", "p/c", 2_000)).unwrap());
    granted(l.reserve(&req("p/c", 0, 100, 900)).unwrap());
    l.commit(&id("p/c", 1, 0), 700).unwrap();
    granted(l.reserve(&req("p/c", 1, 100, 100)).unwrap());
    // The call still in flight (200) is charged in full; the rest of the envelope returns.
    assert_eq!(l.close("p/c").unwrap(), 1_100);
    assert_eq!(l.close("p/c").unwrap(), 0);
    assert_eq!(l.available("p").unwrap(), 4_100);
    assert_eq!(l.account("p").unwrap().committed, 900);
    assert_eq!(l.account("p/c").unwrap().reserved, 0);
    assert_eq!(l.global().reserved, 0);
    assert!(matches!(
        l.reserve(&req("p/c", 2, 1, 1)),
        Err(LedgerError::Closed(_))
    ));
}

#[test]
fn closing_a_child_closes_its_own_children_first() {
    let mut l = ledger(10_000, &[("p", 5_000)]);
    carved(l.carve(&carve("p", "p/c", 2_000)).unwrap());
    carved(l.carve(&carve("p/c", "p/c/g", 1_000)).unwrap());
    granted(l.reserve(&req("p/c/g", 0, 100, 200)).unwrap());
    l.commit(&id("p/c/g", 1, 0), 250).unwrap();
    assert_eq!(l.account("p/c").unwrap().committed, 250);
    assert_eq!(l.account("p").unwrap().committed, 250);
    assert_eq!(l.close("p/c").unwrap(), 1_750);
    assert_eq!(l.close("p/c/g").unwrap(), 0);
    assert_eq!(l.account("p").unwrap().reserved, 0);
    assert_eq!(l.global().used(), 250);
}

#[test]
fn only_carved_accounts_can_be_closed() {
    let mut l = ledger(10_000, &[("p", 5_000)]);
    assert!(matches!(l.close("p"), Err(LedgerError::NotDelegated(_))));
}

#[test]
fn ending_a_parents_attempt_keeps_its_childrens_envelopes() {
    let mut l = ledger(10_000, &[("p", 5_000)]);
    carved(l.carve(&carve("p", "p/c", 2_000)).unwrap());
    granted(l.reserve(&req("p", 0, 100, 100)).unwrap());
    assert_eq!(l.end_attempts("p", 1).unwrap(), 200);
    assert_eq!(l.account("p").unwrap().reserved, 2_000);
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
    /// The attempt ends with its calls in flight; the provider had served this share
    /// (per mille) of each call's grant.
    Crash {
        agent: usize,
        served_per_mille: u64,
    },
    Restart {
        agent: usize,
    },
    Retry {
        agent: usize,
    },
    Carve {
        parent: usize,
        wanted: u64,
    },
    Close {
        agent: usize,
    },
}

fn op(agents: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..agents, 0u64..800, 0u64..2_000)
            .prop_map(|(agent, prompt, out)| Op::Reserve { agent, prompt, out }),
        4 => (0..agents, 0u64..=1_000, proptest::bool::weighted(0.05))
            .prop_map(|(agent, used_per_mille, over)| Op::Commit { agent, used_per_mille, over }),
        1 => (0..agents, 0u64..=1_000)
            .prop_map(|(agent, served_per_mille)| Op::Crash { agent, served_per_mille }),
        1 => (0..agents).prop_map(|agent| Op::Restart { agent }),
        1 => (0..agents).prop_map(|agent| Op::Retry { agent }),
        1 => (0..agents, 0u64..3_000).prop_map(|(parent, wanted)| Op::Carve { parent, wanted }),
        1 => (0..agents).prop_map(|agent| Op::Close { agent }),
    ]
}

/// What each simulated agent has open: (attempt, next turn, open reservation's turn and grant).
#[derive(Debug, Clone, Default)]
struct Sim {
    attempt: u32,
    turn: u32,
    open: Vec<(ReservationId, u64, ReserveRequest)>,
    /// A delegated agent whose account was closed: it makes no more calls.
    closed: bool,
    children: u32,
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
        // What an account holds: its own calls in flight and its open children's envelopes.
        let open: u64 = l
            .open
            .iter()
            .filter(|(id, _)| id.agent == name)
            .map(|(_, o)| o.granted)
            .sum();
        let holds: u64 = l
            .delegated
            .values()
            .filter(|e| e.parent == name)
            .map(|e| e.hold)
            .sum();
        prop_assert_eq!(a.reserved, open + holds, "{} holds", name);
        let children: u64 = l
            .accounts()
            .filter(|(c, _)| l.parent(c) == Some(name))
            .map(|(_, c)| c.committed)
            .sum();
        prop_assert!(
            a.committed >= children,
            "{name} charged less than its children"
        );
        match l.delegated.get(name) {
            Some(e) if !e.closed => {
                prop_assert_eq!(e.hold, a.limit - a.committed, "{} hold", name);
            }
            Some(_) => prop_assert_eq!(a.reserved, 0),
            None => {
                reserved += a.reserved;
                committed += a.committed;
                overrun += a.overrun;
            }
        }
    }
    prop_assert_eq!(
        (reserved, committed, overrun),
        (g.reserved, g.committed, g.overrun)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random interleavings of reserve / commit / release / crash / restart / retried calls
    /// / carving and closing delegated accounts, across many agents at any depth, never
    /// break the ledger's invariants.
    #[test]
    fn ledger_invariants_hold_under_any_interleaving(
        limits in proptest::collection::vec(0u64..6_000, 1..8),
        global in 0u64..20_000,
        ops in proptest::collection::vec(op(16), 1..200),
    ) {
        let mut names: Vec<String> = (0..limits.len()).map(|i| format!("agent-{i}")).collect();
        let mut l = BudgetLedger::new(global);
        for (n, lim) in names.iter().zip(&limits) {
            l.register(n, *lim).unwrap();
        }
        let mut sims = vec![Sim { attempt: 1, ..Sim::default() }; names.len()];
        // The supervisor's copy, kept by replaying each change.
        let mut shadow = l.clone();
        // What the providers served (and bill), by their own reports or by the share of a
        // call served before it was abandoned.
        let mut served = 0u64;
        for op in ops {
            match op {
                Op::Reserve { agent, prompt, out } => {
                    let Some(name) = names.get(agent) else { continue };
                    let sim = &mut sims[agent];
                    if sim.closed {
                        continue;
                    }
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
                    served += used;
                }
                Op::Crash { agent, .. } | Op::Restart { agent } => {
                    let Some(name) = names.get(agent) else { continue };
                    let sim = &mut sims[agent];
                    if sim.closed {
                        continue;
                    }
                    let expected: u64 = sim.open.iter().map(|(_, g, _)| g).sum();
                    if let Op::Crash { served_per_mille, .. } = op {
                        served += sim.open.iter().map(|(_, g, _)| g * served_per_mille / 1_000).sum::<u64>();
                    }
                    prop_assert_eq!(l.end_attempts(name, sim.attempt).unwrap(), expected);
                    shadow.apply(&LedgerOp::EndAttempts(name.clone(), sim.attempt));
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
                Op::Carve { parent, wanted } => {
                    let Some(name) = names.get(parent).cloned() else { continue };
                    if sims[parent].closed {
                        continue;
                    }
                    sims[parent].children += 1;
                    let before = l.available(&name).unwrap();
                    let r = CarveRequest {
                        parent: name.clone(),
                        child: format!("{name}/c{}", sims[parent].children),
                        wanted,
                        min: 1,
                    };
                    shadow.apply(&LedgerOp::Carve(r.clone()));
                    match l.carve(&r).unwrap() {
                        CarveOutcome::Carved(e) => {
                            prop_assert!(e <= before && e <= wanted);
                            prop_assert_eq!(l.available(&name).unwrap(), before - e);
                            names.push(r.child);
                            sims.push(Sim { attempt: 1, ..Sim::default() });
                        }
                        CarveOutcome::Denied(d) => prop_assert!(d.available < d.needed),
                    }
                }
                Op::Close { agent } => {
                    let Some(name) = names.get(agent).cloned() else { continue };
                    let Some(parent) = l.parent(&name).map(str::to_owned) else { continue };
                    let was_closed = sims[agent].closed;
                    let before = l.available(&parent).unwrap();
                    let returned = l.close(&name).unwrap();
                    // Calls in flight below it were charged in full; the rest went back.
                    let a = l.account(&name).unwrap();
                    let expected = if was_closed { 0 } else { a.limit - a.committed };
                    prop_assert_eq!(returned, expected);
                    shadow.apply(&LedgerOp::Close(name.clone()));
                    // It and everything carved below it are closed.
                    for (i, n) in names.iter().enumerate() {
                        if n == &name || n.starts_with(&format!("{name}/")) {
                            sims[i].closed = true;
                            sims[i].open.clear();
                        }
                    }
                    if !l.delegated.get(&parent).is_some_and(|e| e.closed) {
                        prop_assert!(l.available(&parent).unwrap() >= before);
                    }
                }
            }
            check_invariants(&l)?;
            prop_assert_eq!(&shadow, &l);
            let g = l.global();
            prop_assert!(
                g.committed + g.overrun >= served,
                "charged {} + overrun {} < served {served}", g.committed, g.overrun
            );
        }
    }
}
