//! Round robin is fair: whatever the others do (come and go, fill up), among agents who were
//! online the whole time and never full, routed counts differ by at most one.

use domain::Presence;
use proptest::prelude::*;
use routing::RoutingConfig;

use crate::support::*;

#[derive(Clone, Debug)]
enum Step {
    /// A ticket arrives in the team.
    Ticket,
    /// A ticket of the steady agents' is solved (keeps them far from capacity).
    Solve(usize),
    /// One of the other agents changes presence.
    Presence(u64, Presence),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Ticket),
        1 => (0usize..1000).prop_map(Step::Solve),
        2 => (0u64..3, prop_oneof![
            Just(Presence::Online),
            Just(Presence::Away),
            Just(Presence::Offline),
        ])
        .prop_map(|(agent, presence)| Step::Presence(10 + agent, presence)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn always_online_agents_differ_by_at_most_one(
        steady in 2u64..6,
        steps in proptest::collection::vec(step(), 1..120),
    ) {
        let mut sim = Sim::new(RoutingConfig::default());
        sim.team(1, "Support");
        // Steady agents 1..=steady (capacity never reached); others 10..13, small capacity,
        // coming and going. Ids interleave in the rotation by registration order of ids.
        for n in 1..=steady {
            sim.agent(n, &[1], 1_000, &[], &[]);
        }
        for n in 10..13 {
            sim.agent(n, &[1], 2, &[], &[]);
        }
        let mut tickets = 0u64;
        for step in steps {
            match step {
                Step::Ticket => {
                    tickets += 1;
                    sim.plain(tickets, 1);
                }
                Step::Solve(pick) if tickets > 0 => {
                    let n = 1 + (pick as u64 % tickets);
                    if sim.engine.ticket_version(ticket(n)).is_some() {
                        sim.solve(n);
                    }
                }
                Step::Solve(_) => {}
                Step::Presence(agent, presence) => {
                    sim.presence(agent, presence);
                }
            }
            sim.route();
        }
        let counts = sim.routed_counts();
        let steady_counts: Vec<u32> = (1..=steady)
            .map(|n| counts.get(&agent(n)).copied().unwrap_or(0))
            .collect();
        let max = steady_counts.iter().max().unwrap();
        let min = steady_counts.iter().min().unwrap();
        prop_assert!(max - min <= 1, "steady agents' counts {steady_counts:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Least loaded reads a ranking kept up to date by every event; debug builds (tests) run
    /// the full scan beside it and panic if they choose differently. Whatever happens, nobody
    /// goes over capacity.
    #[test]
    fn least_loaded_ranking_agrees_with_the_scan(
        steps in proptest::collection::vec(step(), 1..120),
        priorities in proptest::collection::vec(0usize..4, 120),
    ) {
        let config = RoutingConfig {
            teams: [(
                "Support".to_owned(),
                routing::TeamConfig {
                    strategy: domain::RoutingStrategy::LeastLoaded,
                    ..routing::TeamConfig::default()
                },
            )]
            .into_iter()
            .collect(),
            ..RoutingConfig::default()
        };
        let mut sim = Sim::new(config);
        sim.team(1, "Support");
        for n in 1..=3 {
            sim.agent(n, &[1], 3, &[], &[]);
        }
        for n in 10..13 {
            sim.agent(n, &[1], 2, &[], &[]);
        }
        let mut tickets = 0u64;
        for step in steps {
            match step {
                Step::Ticket => {
                    tickets += 1;
                    let priority = domain::Priority::ALL[priorities[tickets as usize % 120]];
                    sim.ticket(tickets, 1, 0, priority, "question", &[], "Where is my order?");
                }
                Step::Solve(pick) if tickets > 0 => {
                    let n = 1 + (pick as u64 % tickets);
                    if sim.engine.ticket_version(ticket(n)).is_some() {
                        sim.solve(n);
                    }
                }
                Step::Solve(_) => {}
                Step::Presence(agent, presence) => {
                    sim.presence(agent, presence);
                }
            }
            sim.route();
            for (n, capacity) in [(1, 3), (2, 3), (3, 3), (10, 2), (11, 2), (12, 2)] {
                let load = sim.engine.load(agent(n)).unwrap();
                prop_assert!(load <= capacity, "a{n} holds {load} of {capacity}");
            }
        }
    }
}
