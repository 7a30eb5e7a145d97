//! The SLA view: per ticket and metric, the due time, whether the clock runs, is paused, was met
//! or stopped, and its state (ok, warning, breached). It also owns `TicketClocks`, the per-ticket
//! clock fold that the queues use for "SLA due time".
//!
//! Clocks come from the domain's SLA events (`SlaApplied`, `SlaWarningRaised`, `SlaBreached`).
//! Due times come from the log: `SlaApplied` and `SlaRecomputed` (a new cycle, a resume after a
//! pause — the due time moved out by the paused time —, a priority or policy change). The log has
//! no "clock met" event, so this view infers it from the ticket's own events, by metric name:
//! `first_response`, `next_reply` and `periodic_update` are met by a public reply, `resolution`
//! by entering a solved or closed state; a clock stops when the ticket closes. Whether a pending
//! state pauses a metric, and the business hours that remaining time is counted in, belong to the
//! policy, so a query passes `SlaRules` (the SLA scheduler's policies); without them, every
//! metric but first response pauses and remaining time is wall-clock time.

use domain::calendar::BusinessCalendar;
use domain::{Event, RecomputeCause, StateCategory, TicketId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::name::Name;
use crate::{Map, Projection, TicketEvent};

/// One SLA clock as folded from the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    pub policy_id: Name,
    pub metric: Name,
    pub due_at: Timestamp,
    pub warned: bool,
    pub breached: bool,
    pub met_at: Option<Timestamp>,
}

/// Whether a clock is counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockStatus {
    Running,
    /// The ticket waits on the customer.
    Paused,
    /// The target was reached (a reply, a resolution).
    Met,
    /// The ticket closed before the target was reached.
    Stopped,
}

/// How the clock stands against its target, as the SLA scheduler recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    Ok,
    Warning,
    Breached,
}

/// The clocks of one ticket and the one fact about the ticket they depend on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketClocks {
    pub category: Option<StateCategory>,
    /// When the ticket entered its category (for the time a paused clock stopped).
    #[serde(default)]
    pub category_since: Option<Timestamp>,
    pub clocks: Vec<Clock>,
}

/// What a query needs from the SLA policies: whether a pending state pauses a policy's metric,
/// and the calendar its business time is counted in.
pub trait SlaRules {
    fn pauses_on_pending(&self, policy_id: &str, metric: &str) -> bool;
    fn calendar(&self, policy_id: &str) -> Option<&BusinessCalendar>;
}

/// No policies known: every metric but first response pauses, time is wall-clock time.
#[derive(Clone, Copy, Debug)]
pub struct WallClock;

impl SlaRules for WallClock {
    fn pauses_on_pending(&self, _: &str, metric: &str) -> bool {
        metric != "first_response"
    }
    fn calendar(&self, _: &str) -> Option<&BusinessCalendar> {
        None
    }
}

impl TicketClocks {
    /// Folds one event; returns whether anything that orders a queue may have changed.
    pub fn apply(&mut self, event: &Event, at: Timestamp) -> bool {
        match event {
            Event::TicketCreated(created) => {
                self.category = Some(created.category);
                self.category_since = Some(at);
            }
            Event::SlaRecomputed(recomputed) => {
                let clock = Clock {
                    policy_id: Name::new(&recomputed.policy_id),
                    metric: Name::new(&recomputed.metric),
                    due_at: recomputed.to_due_at,
                    warned: false,
                    breached: false,
                    met_at: None,
                };
                match self
                    .clocks
                    .iter_mut()
                    .find(|running| running.metric == clock.metric)
                {
                    Some(running) => {
                        running.policy_id = clock.policy_id;
                        running.due_at = clock.due_at;
                        running.met_at = None;
                        // A new cycle's warning and breach are still to come, as in the domain.
                        if recomputed.cause == RecomputeCause::NewCycle {
                            running.warned = false;
                            running.breached = false;
                        }
                    }
                    None => self.clocks.push(clock),
                }
            }
            Event::SlaApplied(applied) => {
                for target in &applied.targets {
                    let clock = Clock {
                        policy_id: Name::new(&applied.policy_id),
                        metric: Name::new(&target.metric),
                        due_at: target.due_at,
                        warned: false,
                        breached: false,
                        met_at: None,
                    };
                    match self.clocks.iter_mut().find(|running| {
                        running.policy_id == clock.policy_id && running.metric == clock.metric
                    }) {
                        // The same due time applied again keeps the clock's state, as the
                        // domain does.
                        Some(running) if running.due_at == clock.due_at => {}
                        Some(running) => *running = clock,
                        None => self.clocks.push(clock),
                    }
                }
            }
            Event::SlaWarningRaised(warning) => {
                self.mark(&warning.policy_id, &warning.metric, warning.due_at, false)
            }
            Event::SlaBreached(breach) => {
                self.mark(&breach.policy_id, &breach.metric, breach.due_at, true)
            }
            Event::PublicReplyPosted(_) => self.meet(at, |metric| {
                metric == b"first_response"
                    || metric == b"next_reply"
                    || metric == b"periodic_update"
            }),
            Event::TicketTransitioned(transitioned) => self.enter(transitioned.to_category, at),
            Event::TicketReopened(reopened) => self.enter(reopened.to_category, at),
            Event::TicketMergedInto(_) => self.enter(StateCategory::Closed, at),
            _ => return false,
        }
        true
    }

    fn mark(&mut self, policy_id: &str, metric: &str, due_at: Timestamp, breached: bool) {
        for clock in &mut self.clocks {
            if clock.due_at == due_at && clock.metric == metric && clock.policy_id == policy_id {
                clock.warned = true;
                clock.breached |= breached;
            }
        }
    }

    fn meet(&mut self, at: Timestamp, metric: impl Fn(&[u8]) -> bool) {
        for clock in &mut self.clocks {
            if clock.met_at.is_none() && metric(clock.metric.as_bytes()) {
                clock.met_at = Some(at);
            }
        }
    }

    fn enter(&mut self, category: StateCategory, at: Timestamp) {
        if matches!(category, StateCategory::Solved | StateCategory::Closed) {
            self.meet(at, |metric| metric == b"resolution");
        }
        if self.category != Some(category) {
            self.category_since = Some(at);
        }
        self.category = Some(category);
    }

    pub fn status(&self, clock: &Clock) -> ClockStatus {
        self.status_with(clock, &WallClock)
    }

    pub fn status_with(&self, clock: &Clock, rules: &dyn SlaRules) -> ClockStatus {
        if clock.met_at.is_some() {
            ClockStatus::Met
        } else if self.category == Some(StateCategory::Closed) {
            ClockStatus::Stopped
        } else if self.category == Some(StateCategory::Solved)
            || (self.category == Some(StateCategory::Pending)
                && rules.pauses_on_pending(&clock.policy_id, &clock.metric))
        {
            ClockStatus::Paused
        } else {
            ClockStatus::Running
        }
    }

    /// The earliest due time of a clock still counting (running or paused): what the queues
    /// order by.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.clocks
            .iter()
            .filter(|clock| {
                matches!(
                    self.status(clock),
                    ClockStatus::Running | ClockStatus::Paused
                )
            })
            .map(|clock| clock.due_at)
            .min()
    }
}

/// One clock as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClockAnswer {
    pub policy_id: String,
    pub metric: String,
    pub due_at: Timestamp,
    pub status: ClockStatus,
    pub state: ClockState,
    pub met_at: Option<Timestamp>,
    /// Business time from `now` to the due time for a running clock (negative once overdue),
    /// frozen at the moment a paused clock stopped; `None` when met or stopped.
    pub remaining_seconds: Option<i64>,
}

/// The SLA view: every ticket's clocks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlaView {
    tickets: Map<TicketId, TicketClocks>,
}

impl Projection for SlaView {
    const NAME: &'static str = "sla";
    /// 2: clocks recomputed by `SlaRecomputed`, periodic updates met by replies, the time a
    /// ticket entered its category.
    const VERSION: u32 = 2;

    fn apply_event(&mut self, event: &TicketEvent) {
        self.tickets
            .entry(event.ticket_id)
            .or_default()
            .apply(&event.event, event.at);
    }
}

impl SlaView {
    /// The clocks of one ticket at `now`, or `None` for an unknown ticket, without policies:
    /// wall-clock time (see `ticket_with`).
    pub fn ticket(&self, ticket_id: TicketId, now: Timestamp) -> Option<Vec<ClockAnswer>> {
        self.ticket_with(ticket_id, now, &WallClock)
    }

    /// The clocks of one ticket at `now`, remaining time in the policy's business hours.
    pub fn ticket_with(
        &self,
        ticket_id: TicketId,
        now: Timestamp,
        rules: &dyn SlaRules,
    ) -> Option<Vec<ClockAnswer>> {
        let clocks = self.tickets.get(&ticket_id)?;
        Some(
            clocks
                .clocks
                .iter()
                .map(|clock| {
                    let status = clocks.status_with(clock, rules);
                    let state = if clock.breached {
                        ClockState::Breached
                    } else if clock.warned {
                        ClockState::Warning
                    } else {
                        ClockState::Ok
                    };
                    let counting = matches!(status, ClockStatus::Running | ClockStatus::Paused);
                    ClockAnswer {
                        policy_id: clock.policy_id.to_string(),
                        metric: clock.metric.to_string(),
                        due_at: clock.due_at,
                        status,
                        state,
                        met_at: clock.met_at,
                        remaining_seconds: counting.then(|| {
                            // A paused clock's remaining time stands still from when it stopped.
                            let from = match status {
                                ClockStatus::Paused => clocks.category_since.unwrap_or(now),
                                _ => now,
                            };
                            business_seconds(rules.calendar(&clock.policy_id), from, clock.due_at)
                        }),
                    }
                })
                .collect(),
        )
    }
}

/// Business seconds from `from` to `to`, negative when `to` is earlier.
fn business_seconds(calendar: Option<&BusinessCalendar>, from: Timestamp, to: Timestamp) -> i64 {
    match calendar {
        None => to.as_second() - from.as_second(),
        Some(calendar) if to >= from => calendar.between(from, to).as_secs(),
        Some(calendar) => -calendar.between(to, from).as_secs(),
    }
}

#[cfg(test)]
mod tests {
    use domain::{Channel, Priority, StateCategory};
    use expect_test::expect;

    use super::*;
    use crate::synth;
    use crate::testkit::{minute, minutes_of, Log};

    #[test]
    fn clocks_run_pause_meet_and_breach() {
        let mut log = Log::default();
        log.create(0, 1, "s", Priority::High, Channel::Email, 1)
            .sla(1, 1, "first_response", 60)
            .sla(1, 1, "resolution", 600)
            .sla(1, 1, "custom", 900)
            .breach(61, 1, "first_response", 60)
            .reply(70, 1, "late")
            .to(80, 1, "waiting_on_customer", StateCategory::Pending)
            .create(0, 2, "s", Priority::High, Channel::Email, 1)
            .sla(1, 2, "resolution", 600)
            .to(100, 2, "resolved", StateCategory::Solved)
            .reopen(110, 2)
            .create(0, 3, "s", Priority::High, Channel::Email, 1)
            .sla(1, 3, "resolution", 600)
            .to(100, 3, "closed", StateCategory::Closed);
        let view: SlaView = log.fold();
        let lines: Vec<String> = (1..=4)
            .map(
                |ticket| match view.ticket(synth::ticket(ticket), minute(90)) {
                    None => format!("t{ticket}: unknown"),
                    Some(clocks) => clocks
                        .iter()
                        .map(|clock| {
                            format!(
                                "t{ticket} {} due={} {:?} {:?} met={:?} remaining={:?}",
                                clock.metric,
                                minutes_of(clock.due_at),
                                clock.status,
                                clock.state,
                                clock.met_at.map(minutes_of),
                                clock.remaining_seconds.map(|seconds| seconds / 60),
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                },
            )
            .collect();
        expect![[r#"
            t1 first_response due=60 Met Breached met=Some(70) remaining=None
            t1 resolution due=600 Paused Ok met=None remaining=Some(520)
            t1 custom due=900 Paused Ok met=None remaining=Some(820)
            t2 resolution due=600 Met Ok met=Some(100) remaining=None
            t3 resolution due=600 Met Ok met=Some(100) remaining=None
            t4: unknown"#]]
        .assert_eq(&lines.join("\n"));
    }
}
