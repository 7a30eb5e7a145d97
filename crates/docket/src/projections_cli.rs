//! `docket projections …`: how far each read model's stored snapshot is behind the log, and
//! rebuilding read models from the start of the log with a progress bar.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use projections::runner::{self, Projections, RunnerConfig, PROJECTION_NAMES};

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Lag of each read model's stored snapshot behind the log, in events and seconds: what a
    /// node starting now must catch up. (A running node's live lag is on /metrics.)
    Status,
    /// Rebuilds read models from the start of the log into a shadow copy, swaps it in and stores
    /// its snapshot; all of them when no name is given.
    Rebuild {
        /// One of: tickets, queues, agent_load, sla, customers, reports.
        name: Option<String>,
    },
}

pub async fn run(database_url: &str, command: ProjectionsCommand) -> anyhow::Result<ExitCode> {
    let store = store::Store::open(database_url)
        .await
        .with_context(|| format!("opening the event store at {database_url}"))?;
    match command {
        ProjectionsCommand::Status => {
            let (head, _) = store.head().await.context("reading the log head")?;
            let now = jiff::Timestamp::now();
            println!(
                "{:<12} {:>12} {:>12} {:>12} {:>12}",
                "projection", "snapshot at", "log head", "lag events", "lag seconds"
            );
            for snapshot in runner::stored_snapshots(&store)
                .await
                .context("reading snapshots")?
            {
                let position = snapshot.position.unwrap_or(0);
                // The lag in time: how long the oldest record the snapshot lacks has waited.
                let seconds = match store.read_all(position, 1).await?.first() {
                    Some(record) if position < head => {
                        now.duration_since(record.recorded_at).as_secs()
                    }
                    _ => 0,
                };
                let at = snapshot
                    .position
                    .map_or_else(|| "none".to_owned(), |p| p.to_string());
                println!(
                    "{:<12} {:>12} {:>12} {:>12} {:>12}",
                    snapshot.name,
                    at,
                    head,
                    head - position.min(head),
                    seconds
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ProjectionsCommand::Rebuild { name } => {
            let name: Option<&str> = match &name {
                Some(name) => Some(
                    PROJECTION_NAMES
                        .iter()
                        .find(|known| **known == name.as_str())
                        .with_context(|| {
                            format!(
                                "no read model {name:?}; known: {}",
                                PROJECTION_NAMES.join(", ")
                            )
                        })?,
                ),
                None => None,
            };
            let projections = Projections::start(store, RunnerConfig::default())
                .await
                .context("starting the read models")?;
            let bar = ProgressBar::new(0).with_style(
                ProgressStyle::with_template(
                    "{msg:<12} {bar:40} {human_pos}/{human_len} events  {per_sec}  eta {eta}",
                )
                .context("progress bar template")?,
            );
            let mut progress = |applied, total| {
                bar.set_length(total);
                bar.set_position(applied);
            };
            match name {
                Some(name) => {
                    bar.set_message(name);
                    let rebuilt = projections
                        .rebuild(name, &mut progress)
                        .await
                        .context("a known read model")?
                        .with_context(|| format!("rebuilding {name}"))?;
                    bar.finish_and_clear();
                    println!("{name}: rebuilt up to position {rebuilt}");
                }
                // All of them in one pass over the log: each record read and decoded once.
                None => {
                    bar.set_message("all");
                    let rebuilt = projections
                        .rebuild_all(&mut progress)
                        .await
                        .context("rebuilding every read model")?;
                    bar.finish_and_clear();
                    println!(
                        "{}: rebuilt up to position {rebuilt}",
                        PROJECTION_NAMES.join(", ")
                    );
                }
            }
            projections
                .snapshot()
                .await
                .context("storing the snapshots")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
