//! The pure SLA engine: folds one ticket's events (each with the time it happened) into its
//! four metric clocks — counting or not, business time elapsed, due and warning times — and
//! says what the log still lacks: an `ApplySla` or `RecomputeSla` when a due time moved, a
//! warning or breach when one is due. No clock, no I/O: the scheduler, the tests and the
//! simulation's oracle all check against the same fold. Semantics: docs/sla.md.

use domain::calendar::BusinessCalendar;
use domain::{
    ApplySla, Channel, Command, Event, Priority, RecomputeCause, RecomputeSla, RecordSlaBreach,
    RecordSlaWarning, SlaTarget, StateCategory, TeamId, TicketId,
};
use jiff::{SignedDuration, Timestamp};

use crate::policy::{Facts, Metric, Policies, Policy, Trigger};

/// The pause rule when no policy applies: every metric but first response pauses.
const DEFAULT_PAUSE: [bool; 4] = [false, true, true, true];

/// One metric's clock on one ticket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    /// A cycle is open: started and neither met nor stopped.
    pub active: bool,
    /// 1 for the first cycle; repeating metrics (next reply, periodic update) count up.
    pub cycle: u32,
    /// Counting since this instant (`None` while paused, met or stopped).
    pub since: Option<Timestamp>,
    /// When counting last stopped (a pause, met, stopped), for a breach that was already due.
    pub stopped_at: Option<Timestamp>,
    /// Business time counted before `since`.
    pub elapsed: SignedDuration,
    pub met_at: Option<Timestamp>,
    /// When the target is reached, and when to warn, as the engine computes them.
    pub due_at: Option<Timestamp>,
    pub warn_at: Option<Timestamp>,
    /// The target and calendar policy `due_at` was computed for.
    pub target: Option<SignedDuration>,
    pub computed_for: Option<usize>,
    /// Why `due_at` moved since the log last recorded it.
    pub cause: Option<RecomputeCause>,
    /// What the log recorded (a mirror of the domain's clock).
    pub recorded_policy: Option<&'static str>,
    pub recorded_due: Option<Timestamp>,
    /// How many `SlaRecomputed` the log holds for this clock: the sequence number of the next
    /// recompute, in its command id.
    pub recomputes: u32,
    pub warned: bool,
    pub breached: bool,
}

/// A timer the log still owes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owed {
    pub metric: Metric,
    pub trigger: Trigger,
    pub at: Timestamp,
}

/// One ticket as the SLA engine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketSla {
    pub ticket_id: TicketId,
    /// Interned (`packed::intern`): a leader holds a million of these.
    pub tier: &'static str,
    pub priority: Priority,
    pub channel: Channel,
    pub ticket_type: &'static str,
    pub team: Option<TeamId>,
    pub category: StateCategory,
    /// The index of the policy that applies, in `Policies`.
    pub policy: Option<usize>,
    pub clocks: [Clock; 4],
    /// Whether the log has any SLA event for this ticket (the first is an `ApplySla`).
    pub applied: bool,
}

fn calendar_of(policies: &Policies, policy: Option<usize>) -> &BusinessCalendar {
    static ALWAYS: std::sync::OnceLock<BusinessCalendar> = std::sync::OnceLock::new();
    match policy.and_then(|index| policies.policies.get(index)) {
        Some(policy) => &policy.calendar,
        None => ALWAYS.get_or_init(BusinessCalendar::always_open),
    }
}

impl TicketSla {
    /// The ticket at its creation; `None` for any event other than `TicketCreated`.
    pub fn created(
        event: &Event,
        at: Timestamp,
        tier: &str,
        policies: &Policies,
    ) -> Option<TicketSla> {
        let Event::TicketCreated(created) = event else {
            return None;
        };
        let mut ticket = TicketSla {
            ticket_id: created.ticket_id,
            tier: crate::packed::intern(tier),
            priority: created.priority,
            channel: created.channel,
            ticket_type: crate::packed::intern(&created.ticket_type),
            team: None,
            category: created.category,
            policy: None,
            clocks: Default::default(),
            applied: false,
        };
        ticket.policy = policies.choose(&ticket.facts());
        for metric in [
            Metric::FirstResponse,
            Metric::PeriodicUpdate,
            Metric::Resolution,
        ] {
            ticket.start_cycle(metric, at);
        }
        ticket.refresh(at, policies, false);
        Some(ticket)
    }

    pub fn facts(&self) -> Facts<'_> {
        Facts {
            tier: self.tier,
            priority: self.priority,
            channel: self.channel,
            ticket_type: self.ticket_type,
            team: self.team,
        }
    }

    pub fn policy<'a>(&self, policies: &'a Policies) -> Option<&'a Policy> {
        self.policy.and_then(|index| policies.policies.get(index))
    }

    fn start_cycle(&mut self, metric: Metric, at: Timestamp) {
        let clock = &mut self.clocks[metric.index()];
        clock.active = true;
        clock.cycle += 1;
        clock.since = None;
        clock.stopped_at = None;
        clock.elapsed = SignedDuration::ZERO;
        clock.met_at = None;
        clock.due_at = None;
        clock.warn_at = None;
        clock.cause = Some(RecomputeCause::NewCycle);
        let _ = at;
    }

    fn meet(&mut self, metric: Metric, at: Timestamp) {
        let clock = &mut self.clocks[metric.index()];
        if clock.active {
            clock.active = false;
            clock.met_at = Some(at);
        }
    }

    /// Whether a metric's clock counts now.
    fn counts(&self, metric: Metric, policies: &Policies) -> bool {
        let pause = self
            .policy(policies)
            .map_or(DEFAULT_PAUSE, |policy| policy.pause_on_pending);
        self.clocks[metric.index()].active
            && match self.category {
                StateCategory::New | StateCategory::Open => true,
                StateCategory::Pending => !pause[metric.index()],
                StateCategory::Solved | StateCategory::Closed => false,
            }
    }

    /// Adds the business time counted up to `at` (in the calendar of the policy in force).
    fn settle(&mut self, at: Timestamp, policies: &Policies) {
        let calendar = calendar_of(policies, self.policy);
        for clock in &mut self.clocks {
            if let Some(since) = clock.since {
                if at > since {
                    clock.elapsed += calendar.between(since, at);
                    clock.since = Some(at);
                }
            }
        }
    }

    /// Folds one event that happened at `at`.
    pub fn apply(&mut self, event: &Event, at: Timestamp, policies: &Policies) {
        self.settle(at, policies);
        let mut targets_may_change = false;
        match event {
            Event::TicketCreated(_) => return,
            Event::PriorityChanged(changed) => {
                self.priority = changed.to;
                targets_may_change = true;
            }
            Event::PriorityChangedByRule(changed) => {
                self.priority = changed.to;
                targets_may_change = true;
            }
            Event::TeamAssigned(assigned) => {
                self.team = Some(assigned.to);
                targets_may_change = true;
            }
            Event::TeamTransferred(transferred) => {
                self.team = Some(transferred.to);
                targets_may_change = true;
            }
            Event::CustomerMessageReceived(_) => {
                let first_response_waits = self.clocks[Metric::FirstResponse.index()].active;
                if !first_response_waits
                    && !self.clocks[Metric::NextReply.index()].active
                    && self.category != StateCategory::Closed
                {
                    self.start_cycle(Metric::NextReply, at);
                }
            }
            Event::PublicReplyPosted(_) => {
                self.meet(Metric::FirstResponse, at);
                self.meet(Metric::NextReply, at);
                if self.clocks[Metric::PeriodicUpdate.index()].active {
                    self.meet(Metric::PeriodicUpdate, at);
                    self.start_cycle(Metric::PeriodicUpdate, at);
                }
            }
            Event::TicketTransitioned(transitioned) => {
                self.enter(transitioned.to_category, at);
            }
            Event::TicketReopened(reopened) => self.enter(reopened.to_category, at),
            Event::TicketMergedInto(_) => self.enter(StateCategory::Closed, at),
            Event::SlaApplied(applied) => {
                self.applied = true;
                for target in &applied.targets {
                    let Some(metric) = Metric::parse(&target.metric) else {
                        continue;
                    };
                    let clock = &mut self.clocks[metric.index()];
                    let same = clock.recorded_policy == Some(applied.policy_id.as_str())
                        && clock.recorded_due == Some(target.due_at);
                    if !same {
                        clock.recorded_policy = Some(crate::packed::intern(&applied.policy_id));
                        clock.recorded_due = Some(target.due_at);
                        clock.warned = false;
                        clock.breached = false;
                    }
                    if clock.due_at == Some(target.due_at) {
                        clock.cause = None;
                    }
                }
            }
            Event::SlaRecomputed(recomputed) => {
                self.applied = true;
                if let Some(metric) = Metric::parse(&recomputed.metric) {
                    let clock = &mut self.clocks[metric.index()];
                    clock.recorded_policy = Some(crate::packed::intern(&recomputed.policy_id));
                    clock.recorded_due = Some(recomputed.to_due_at);
                    clock.recomputes = clock.recomputes.saturating_add(1);
                    if recomputed.cause == RecomputeCause::NewCycle {
                        clock.warned = false;
                        clock.breached = false;
                    }
                    if clock.due_at == Some(recomputed.to_due_at) {
                        clock.cause = None;
                    }
                }
            }
            Event::SlaWarningRaised(warning) => {
                self.mark(&warning.policy_id, &warning.metric, warning.due_at, false);
            }
            Event::SlaBreached(breach) => {
                self.mark(&breach.policy_id, &breach.metric, breach.due_at, true);
            }
            _ => return,
        }
        self.refresh(at, policies, targets_may_change);
    }

    fn mark(&mut self, policy_id: &str, metric: &str, due_at: Timestamp, breached: bool) {
        let Some(metric) = Metric::parse(metric) else {
            return;
        };
        let clock = &mut self.clocks[metric.index()];
        if clock.recorded_policy == Some(policy_id) && clock.recorded_due == Some(due_at) {
            if breached {
                clock.breached = true;
            } else {
                clock.warned = true;
            }
        }
    }

    fn enter(&mut self, category: StateCategory, at: Timestamp) {
        let was = self.category;
        self.category = category;
        match category {
            StateCategory::Solved => self.meet(Metric::Resolution, at),
            StateCategory::Closed => {
                for clock in &mut self.clocks {
                    clock.active = false;
                }
            }
            StateCategory::New | StateCategory::Open | StateCategory::Pending => {
                // Reopened: the resolution clock goes on from where it stood when solved.
                let resolution = &mut self.clocks[Metric::Resolution.index()];
                if was == StateCategory::Solved && resolution.met_at.is_some() {
                    resolution.active = true;
                    resolution.met_at = None;
                    resolution.cause.get_or_insert(RecomputeCause::Resumed);
                }
            }
        }
    }

    /// Brings counting and due times in line with the ticket as it now stands.
    fn refresh(&mut self, at: Timestamp, policies: &Policies, targets_may_change: bool) {
        let before = self.policy;
        if targets_may_change {
            self.policy = policies.choose(&self.facts());
        }
        let policy_changed = self.policy != before;
        for metric in Metric::ALL {
            let counting = self.counts(metric, policies);
            let target = self
                .policy(policies)
                .and_then(|policy| policy.target(metric, self.priority));
            let warning = self.policy(policies).and_then(|policy| policy.warning);
            let calendar = calendar_of(policies, self.policy);
            let policy = self.policy;
            let clock = &mut self.clocks[metric.index()];
            match (clock.since, counting) {
                (Some(_), false) => {
                    clock.since = None;
                    clock.stopped_at = Some(at);
                }
                (None, true) => {
                    let counted_until = clock.stopped_at.unwrap_or(at);
                    clock.since = Some(at);
                    clock.stopped_at = None;
                    if clock.cause != Some(RecomputeCause::NewCycle) {
                        clock.cause = Some(RecomputeCause::Resumed);
                    }
                    clock.recompute(at, counted_until, policy, target, warning, calendar);
                }
                // Counting, or paused with a due time recorded: a new target or policy moves the
                // due time to `add(now, new_target - elapsed)` (docs/sla.md). A paused clock's
                // due time then moves out again by the business time paused when it resumes.
                (since, counting)
                    if targets_may_change
                        && (counting || (clock.active && clock.due_at.is_some()))
                        && (clock.target != target || clock.computed_for != self.policy) =>
                {
                    let counted_until = match since {
                        Some(_) => at,
                        None => clock.stopped_at.unwrap_or(at),
                    };
                    let old_due = clock.due_at;
                    clock.recompute(at, counted_until, policy, target, warning, calendar);
                    if clock.due_at != old_due && clock.cause != Some(RecomputeCause::NewCycle) {
                        clock.cause = Some(if policy_changed {
                            RecomputeCause::PolicyChanged
                        } else {
                            RecomputeCause::PriorityChanged
                        });
                    }
                }
                _ => {}
            }
            // A move that lands where the log already stands needs no event.
            if clock.cause != Some(RecomputeCause::NewCycle)
                && clock.due_at == clock.recorded_due
                && clock.recorded_policy
                    == self
                        .policy
                        .and_then(|p| policies.policies.get(p))
                        .map(|p| p.id.as_str())
            {
                clock.cause = None;
            }
        }
    }

    /// Whether the log lacks a due time as computed (cheap: builds no command).
    pub fn is_stale(&self, policies: &Policies) -> bool {
        let Some(policy) = self.policy(policies) else {
            return false;
        };
        self.clocks.iter().any(|clock| clock.is_stale(&policy.id))
    }

    /// The commands the log lacks for due times to be as computed: the first application of the
    /// policy, then one recompute per clock whose due time moved.
    pub fn reconcile(&self, policies: &Policies) -> Vec<(Command, [u8; 32])> {
        let Some(policy) = self.policy(policies) else {
            return Vec::new();
        };
        let stale: Vec<Metric> = Metric::ALL
            .into_iter()
            .filter(|metric| self.clocks[metric.index()].is_stale(&policy.id))
            .collect();
        if stale.is_empty() {
            return Vec::new();
        }
        if !self.applied {
            let targets = stale
                .iter()
                .filter_map(|metric| {
                    let due_at = self.clocks[metric.index()].due_at?;
                    Some(SlaTarget {
                        metric: metric.as_str().to_owned(),
                        due_at,
                    })
                })
                .collect();
            let key = seed(&[b"apply", self.ticket_id.0.as_bytes()]);
            return vec![(
                Command::ApplySla(ApplySla {
                    policy_id: policy.id.clone(),
                    policy_version: policies.version,
                    targets,
                    reason: format!(
                        "{}; calendar {}; priority {}",
                        policy.explain(&self.facts()),
                        policy.calendar_name,
                        self.priority
                    ),
                }),
                key,
            )];
        }
        stale
            .into_iter()
            .filter_map(|metric| {
                let clock = &self.clocks[metric.index()];
                let due_at = clock.due_at?;
                let cause = clock.cause.unwrap_or(RecomputeCause::PolicyChanged);
                let target = policy.target(metric, self.priority)?;
                let reason = format!(
                    "{}: {} target {} for priority {} under {}; {} of business time already counted; due {} -> {}",
                    cause_text(cause),
                    metric,
                    friendly(target),
                    self.priority,
                    policy.explain(&self.facts()),
                    friendly(clock.elapsed),
                    clock.recorded_due.map_or("none".to_owned(), |due| due.to_string()),
                    due_at,
                );
                // The recompute's sequence number on this clock is part of the key: a recompute
                // back to a due time recorded earlier in the cycle (priority raised, then
                // lowered again) is a new fact, and with only the new due time in its key it was
                // taken for a duplicate and never recorded, and its breach never fired (found by
                // the simulation, seed 16781774737726706410). The number only moves when the log
                // records a recompute, so a repeated fire of this one (a retry, another leader)
                // keeps its id.
                let key = seed(&[
                    b"recompute",
                    self.ticket_id.0.as_bytes(),
                    metric.as_str().as_bytes(),
                    &clock.cycle.to_be_bytes(),
                    &clock.recomputes.to_be_bytes(),
                    &due_at.as_nanosecond().to_be_bytes(),
                ]);
                Some((
                    Command::RecomputeSla(RecomputeSla {
                        policy_id: policy.id.clone(),
                        policy_version: policies.version,
                        metric: metric.as_str().to_owned(),
                        due_at,
                        elapsed_business_seconds: clock.elapsed.as_secs(),
                        cause,
                        reason,
                    }),
                    key,
                ))
            })
            .collect()
    }

    /// The warnings and breaches the log owes this ticket, once its due times are recorded.
    pub fn owed(&self) -> Vec<Owed> {
        let mut owed = Vec::new();
        if self.category == StateCategory::Closed {
            return owed;
        }
        for metric in Metric::ALL {
            let clock = &self.clocks[metric.index()];
            let (Some(due_at), true) = (clock.due_at, clock.due_at == clock.recorded_due) else {
                continue;
            };
            // Counting: both come due in time. Stopped (paused or met): only what was already
            // due when it stopped — a warning only while the cycle is still open.
            let stopped = clock.since.is_none().then_some(clock.stopped_at).flatten();
            let counting = clock.since.is_some();
            if !clock.breached && (counting || stopped.is_some_and(|stop| due_at <= stop)) {
                owed.push(Owed {
                    metric,
                    trigger: Trigger::Breach,
                    at: due_at,
                });
            }
            if let Some(warn_at) = clock.warn_at {
                let in_time =
                    clock.active && (counting || stopped.is_some_and(|stop| warn_at <= stop));
                if !clock.warned && !clock.breached && in_time {
                    owed.push(Owed {
                        metric,
                        trigger: Trigger::Warning,
                        at: warn_at,
                    });
                }
            }
        }
        owed
    }

    /// The command that records an owed warning or breach, with the policy's escalations.
    pub fn fire(&self, owed: Owed, policies: &Policies) -> Option<Command> {
        let clock = &self.clocks[owed.metric.index()];
        let policy_id = clock.recorded_policy?.to_owned();
        let due_at = clock.recorded_due?;
        let escalations = policies
            .by_id(&policy_id)
            .map(|policy| policy.escalations(owed.trigger, owed.metric))
            .unwrap_or_default();
        let metric = owed.metric.as_str().to_owned();
        Some(match owed.trigger {
            Trigger::Warning => Command::RecordSlaWarning(RecordSlaWarning {
                policy_id,
                metric,
                due_at,
                escalations,
            }),
            Trigger::Breach => Command::RecordSlaBreach(RecordSlaBreach {
                policy_id,
                metric,
                due_at,
                escalations,
            }),
        })
    }
}

impl Clock {
    /// Whether the log lacks this clock's due time, or the start of its cycle.
    fn is_stale(&self, policy_id: &str) -> bool {
        self.active
            && self.due_at.is_some()
            && (self.due_at != self.recorded_due
                || self.recorded_policy != Some(policy_id)
                || self.cause == Some(RecomputeCause::NewCycle))
    }

    /// Due and warning times from now (`at`), the business time left and the calendar. A target
    /// already used up is due at once, unless it was already due while the clock counted (up to
    /// `counted_until`: now, or when a paused clock stopped): then it keeps its due time. A
    /// paused clock is never due while paused, so a due time that fell in the pause does not
    /// stand: the clock is due when it counts again.
    fn recompute(
        &mut self,
        at: Timestamp,
        counted_until: Timestamp,
        policy: Option<usize>,
        target: Option<SignedDuration>,
        warning: Option<crate::policy::Warning>,
        calendar: &BusinessCalendar,
    ) {
        self.target = target;
        self.computed_for = policy;
        let Some(target) = target else {
            self.due_at = None;
            self.warn_at = None;
            return;
        };
        let add = |duration: SignedDuration| calendar.add(at, duration).ok();
        if self.elapsed < target {
            self.due_at = add(target - self.elapsed);
        } else if self.breached || self.due_at.is_some_and(|due| due <= counted_until) {
            // Already due: the due time stands.
        } else {
            self.due_at = Some(at);
        }
        self.warn_at = match warning.and_then(|warning| warning.threshold(target)) {
            Some(threshold) if self.elapsed < threshold => add(threshold - self.elapsed),
            Some(_) if self.warned => self.warn_at,
            Some(_) => self.due_at.map(|due| due.min(at)),
            None => None,
        };
    }
}

fn cause_text(cause: RecomputeCause) -> &'static str {
    match cause {
        RecomputeCause::NewCycle => "new cycle",
        RecomputeCause::Resumed => "resumed after a pause",
        RecomputeCause::PriorityChanged => "priority changed",
        RecomputeCause::PolicyChanged => "policy changed",
    }
}

fn friendly(duration: SignedDuration) -> String {
    let minutes = duration.as_secs() / 60;
    format!("{}h{:02}m", minutes / 60, minutes % 60)
}

/// A stable 32-byte key for a command id, from its parts.
pub fn seed(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(b"docket.sla.v1");
    for part in parts {
        hasher.update((part.len() as u32).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}
