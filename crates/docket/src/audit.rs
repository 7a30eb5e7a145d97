//! `docket audit …`: chain verification of the event log, for auditors, against either backend.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walks both hash chains (per stream and global) and reports the first broken record.
    Verify {
        /// First position to check (the record before it is trusted as the anchor).
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Last position to check; the head of the log when omitted.
        #[arg(long)]
        to: Option<u64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(database_url: &str, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { from, to, json } => verify(database_url, from, to, json).await,
    }
}

async fn verify(
    database_url: &str,
    from: u64,
    to: Option<u64>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = store::Store::open(database_url)
        .await
        .with_context(|| format!("opening the event store at {database_url}"))?;
    // Drawn only when stderr is a terminal.
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "verifying {bar:40} {human_pos}/{human_len} records  {per_sec}  eta {eta}",
        )
        .context("progress bar template")?,
    );
    let report = store
        .verify(from, to, &mut |checked, total| {
            bar.set_length(total);
            bar.set_position(checked);
        })
        .await
        .context("verifying the hash chains")?;
    bar.finish_and_clear();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        );
    } else {
        match &report.first_break {
            None => println!(
                "intact: positions {}..={} ({} records) verify; last global hash {}",
                report.from, report.to, report.checked, report.last_global_hash
            ),
            Some(broken) => println!(
                "BROKEN at position {}{}: {} ({} records before it verify)",
                broken.position,
                broken
                    .stream_id
                    .as_deref()
                    .map(|s| format!(" (stream {s})"))
                    .unwrap_or_default(),
                broken.reason,
                report.checked
            ),
        }
    }
    Ok(if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
