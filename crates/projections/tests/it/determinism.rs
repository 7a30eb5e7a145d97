//! Determinism: models maintained incrementally by the runner over a long seeded run (appends in
//! random bursts, snapshots and restarts between them) answer every query exactly as models
//! rebuilt from scratch do, row by row. `DOCKET_SLOW_TESTS=1` makes the run ten times longer;
//! `DOCKET_SEED` replays a seed.

use std::time::Duration;

use projections::customers::CustomerHistory;
use projections::queues::{QueueId, QUEUE_PAGE_MAX};
use projections::reports::ReportQuery;
use projections::runner::{Projections, RunnerConfig};
use projections::synth::{self, SynthConfig};
use projections::tickets::{ListQuery, TicketFilter, TicketSort, PAGE_LIMIT_MAX};
use store::scratch::ScratchDb;
use store::Store;

const WAIT: Duration = Duration::from_secs(60);

/// Every answer the models give for a fixed battery of queries, as text.
fn answers(projections: &Projections, config: &SynthConfig) -> Vec<String> {
    let mut answers = Vec::new();
    let tickets = projections.tickets.read();
    for sort in [
        TicketSort::CreatedDesc,
        TicketSort::UpdatedAsc,
        TicketSort::Priority,
    ] {
        for filter in [
            TicketFilter::default(),
            TicketFilter {
                team: Some(synth::team(1)),
                ..TicketFilter::default()
            },
            TicketFilter {
                text: Some("支付 payment".to_owned()),
                ..TicketFilter::default()
            },
            TicketFilter {
                unassigned: true,
                ..TicketFilter::default()
            },
        ] {
            let mut cursor = None;
            loop {
                let page = tickets
                    .list(&ListQuery {
                        filter: filter.clone(),
                        sort,
                        limit: PAGE_LIMIT_MAX,
                        cursor,
                    })
                    .unwrap();
                answers.extend(page.items.iter().map(|row| format!("{row:?}")));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }
    drop(tickets);
    let queues = projections.queues.read();
    let sla = projections.sla.read();
    for index in 0..config.teams {
        let entries = queues
            .list(QueueId::Team(synth::team(index)), None, QUEUE_PAGE_MAX)
            .unwrap();
        answers.extend(entries.iter().map(|entry| format!("{entry:?}")));
    }
    for index in 0..config.agents {
        let agent = synth::agent(index);
        answers.push(format!(
            "{:?}",
            queues
                .list(QueueId::Agent(agent), None, QUEUE_PAGE_MAX)
                .unwrap()
        ));
        answers.push(format!(
            "{:?}",
            queues.next_for_agent(agent, &[synth::team(index % config.teams)])
        ));
        answers.push(format!("{:?}", projections.agents.read().load(agent, 20)));
    }
    for index in 0..config.tickets {
        answers.push(format!(
            "{:?}",
            sla.ticket(synth::ticket(index), config.start)
        ));
    }
    for index in 0..config.tickets / 3 + 1 {
        let history: Option<CustomerHistory> =
            projections.customers.read().history(synth::customer(index));
        answers.push(format!("{history:?}"));
    }
    let reports = projections.reports.read();
    for days in [1, 7, 30] {
        let mut query = ReportQuery::new(
            config.start,
            config.start + jiff::SignedDuration::from_hours(24 * days),
        );
        answers.push(format!("{:?}", reports.report(&query)));
        query.team = Some(synth::team(2));
        answers.push(format!("{:?}", reports.report(&query)));
    }
    answers
}

#[tokio::test]
async fn incremental_models_answer_like_rebuilt_ones() {
    let seed = std::env::var("DOCKET_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| jiff::Timestamp::now().as_second() as u64);
    let slow = std::env::var("DOCKET_SLOW_TESTS").is_ok_and(|value| value == "1");
    let config = SynthConfig::small(seed, if slow { 3000 } else { 300 });
    #[allow(
        clippy::print_stderr,
        reason = "the seed must show when the test fails"
    )]
    {
        eprintln!("determinism: DOCKET_SEED={seed}");
    }
    for db in ScratchDb::all().await {
        let store = Store::open_with(db.config.clone()).await.unwrap();
        let mut rng = synth::Rng::new(seed);
        // As `docket serve` folds: on SQLite on a thread of their own at the lowest priority,
        // on PostgreSQL on the caller's runtime.
        let fold_nice = Some(19);
        let mut events = synth::history(config.clone()).peekable();
        let mut projections = Projections::start(
            store.clone(),
            RunnerConfig {
                snapshot_every_events: 97,
                fold_nice,
            },
        )
        .await
        .unwrap();
        while events.peek().is_some() {
            let burst: Vec<_> = events.by_ref().take(1 + rng.below(300) as usize).collect();
            let head = synth::append_all(&store, burst, 1 + rng.below(100) as usize)
                .await
                .unwrap();
            if rng.percent(30) {
                assert!(projections.wait_for(head, WAIT).await, "seed {seed}");
            }
            if rng.percent(10) {
                // A restart: the models come back from their snapshots and catch up.
                drop(projections);
                projections = Projections::start(
                    store.clone(),
                    RunnerConfig {
                        snapshot_every_events: 97,
                        fold_nice,
                    },
                )
                .await
                .unwrap();
            }
        }
        let (head, _) = store.head().await.unwrap();
        assert!(projections.wait_for(head, WAIT).await, "seed {seed}");
        let incremental = answers(&projections, &config);
        for name in projections::runner::PROJECTION_NAMES {
            projections
                .rebuild(name, &mut |_, _| {})
                .await
                .unwrap()
                .unwrap();
        }
        let rebuilt = answers(&projections, &config);
        assert_eq!(incremental.len(), rebuilt.len(), "seed {seed}");
        for (row, (incremental, rebuilt)) in incremental.iter().zip(&rebuilt).enumerate() {
            assert_eq!(
                incremental, rebuilt,
                "seed {seed} {:?}, answer {row}",
                db.kind
            );
        }
        db.cleanup().await;
    }
}
