//! The scheduler's way into the domain: `ApiSink` issues due work (SLA warnings, breaches,
//! recomputes; time-based automations) as the System actor through the same decide-and-append
//! path as every other command, and `AppState::start_scheduler` runs the driver in the
//! background, with the node's leadership, and keeps its stats for `/metrics`.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::json;
use sla_scheduler::{
    CommandSink, Issued, Leadership, Policies, SchedulerStats, SinkError, SlaSource, TimerSource,
    Work,
};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::tickets::{system_command, SystemOutcome};
use crate::AppState;

/// Makes the extra timer sources (time-based automations) a new leader folds the log into.
pub type SourceFactory = Arc<dyn Fn() -> Vec<Box<dyn TimerSource>> + Send + Sync>;

/// Issues scheduled work through the API's decider.
#[derive(Clone, Debug)]
pub struct ApiSink {
    state: AppState,
}

impl ApiSink {
    pub fn new(state: AppState) -> ApiSink {
        ApiSink { state }
    }
}

impl CommandSink for ApiSink {
    async fn issue(&self, work: &Work) -> Result<Issued, SinkError> {
        let scheduler = json!({"source": work.source, "due_at": work.due_at});
        match system_command(
            &self.state,
            work.ticket,
            &work.command,
            work.command_id,
            scheduler,
        )
        .await
        {
            Ok(SystemOutcome::Appended { position }) => Ok(Issued::Appended { position }),
            Ok(SystemOutcome::Duplicate) => Ok(Issued::Duplicate),
            Ok(SystemOutcome::Unchanged) => Ok(Issued::Unchanged),
            Err(ApiError::Rejected(rejection)) => Ok(Issued::Rejected {
                rule: rejection.to_string(),
            }),
            Err(ApiError::NotFound(message)) => Ok(Issued::Rejected { rule: message }),
            Err(error) => Err(SinkError {
                message: error.to_string(),
            }),
        }
    }
}

/// The API's clock, for the driver.
#[derive(Clone, Debug)]
pub struct StateClock(pub AppState);

impl sla_scheduler::Clock for StateClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

impl AppState {
    /// Starts the scheduler in the background: it waits for the lead (always at once on
    /// SQLite), then folds the log and fires. `stop` ends it. Returns its stats.
    pub fn start_scheduler(
        &self,
        policies: Arc<Policies>,
        extra_sources: Option<SourceFactory>,
        leadership: Leadership,
        stop: watch::Receiver<bool>,
    ) -> Arc<SchedulerStats> {
        let stats = Arc::new(SchedulerStats::default());
        let _ = self.inner.sla.set(SlaRuntime {
            policies: policies.clone(),
            stats: stats.clone(),
        });
        let make_sources = move || {
            let mut sources: Vec<Box<dyn TimerSource>> =
                vec![Box::new(SlaSource::new(policies.clone()))];
            if let Some(extra) = &extra_sources {
                sources.extend(extra());
            }
            sources
        };
        tokio::spawn(sla_scheduler::driver::run(
            self.store().clone(),
            Arc::new(ApiSink::new(self.clone())),
            Arc::new(StateClock(self.clone())),
            make_sources,
            leadership,
            stats.clone(),
            stop,
        ));
        stats
    }

    /// The SLA policies in force, once the scheduler started.
    pub fn sla_policies(&self) -> Option<&Arc<Policies>> {
        self.inner.sla.get().map(|runtime| &runtime.policies)
    }
}

/// What the API knows of the running scheduler.
#[derive(Debug)]
pub(crate) struct SlaRuntime {
    pub policies: Arc<Policies>,
    pub stats: Arc<SchedulerStats>,
}

/// The SLA view's questions, answered by the policies in force.
#[derive(Clone, Copy, Debug)]
pub struct PolicyRules<'a>(pub &'a Policies);

impl projections::sla::SlaRules for PolicyRules<'_> {
    fn pauses_on_pending(&self, policy_id: &str, metric: &str) -> bool {
        let Some(metric) = sla_scheduler::Metric::parse(metric) else {
            return metric != "first_response";
        };
        self.0
            .by_id(policy_id)
            .map_or(metric != sla_scheduler::Metric::FirstResponse, |policy| {
                policy.pause_on_pending[metric.index()]
            })
    }

    fn calendar(&self, policy_id: &str) -> Option<&domain::calendar::BusinessCalendar> {
        self.0.by_id(policy_id).map(|policy| &policy.calendar)
    }
}
