//! The sans-IO core of the SLA scheduler: a set of timers, each due at an instant, that answers
//! "when is the next one due" and "which are due now", in due order. It holds no clock and does
//! no I/O: the driver feeds it due times (from the SLA read model) and the current time, and
//! turns what is due into commands. It keeps nothing that must survive a restart: everything is
//! rebuilt from the log, and a fire's command id is derived from the timer and its due time, so
//! firing the same timer twice (after a crash, or on two nodes) appends once.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::hash::Hash;

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// The warning before a target's due time.
    Warning,
    /// The target's due time itself.
    Breach,
}

/// One timer: a kind of timer on one SLA clock of one ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId {
    pub ticket: Uuid,
    /// The clock's index among the ticket's SLA clocks.
    pub clock: u16,
    pub kind: TimerKind,
}

/// What names a timer: the SLA's `TimerId`, or another source's own key (time-based
/// automations). Its command id must be a function of the key and the due time only.
pub trait TimerKey: Copy + Ord + Hash + fmt::Debug {
    fn command_id(&self, due_at: Timestamp) -> Uuid;
}

impl TimerKey for TimerId {
    fn command_id(&self, due_at: Timestamp) -> Uuid {
        command_id(*self, due_at)
    }
}

/// A timer that came due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due<T = TimerId> {
    pub timer: T,
    /// When it was due (recorded next to when it was processed, so downtime shows).
    pub due_at: Timestamp,
    /// The command id to append its event with: the same for every fire of this timer at this
    /// due time, so a second fire is a no-op in the store.
    pub command_id: Uuid,
}

/// Most timers one `fire_due` returns; the driver calls again for the rest, so a burst after
/// downtime is processed in bounded steps, oldest first.
pub const FIRE_BATCH_MAX: usize = 10_000;

/// The timers, by due time.
#[derive(Debug)]
pub struct Timers<T = TimerId> {
    by_due: BTreeSet<(Timestamp, T)>,
    due_of: HashMap<T, Timestamp>,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            by_due: BTreeSet::new(),
            due_of: HashMap::new(),
        }
    }
}

impl<T: TimerKey> Timers<T> {
    pub fn len(&self) -> usize {
        self.due_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.due_of.is_empty()
    }

    /// Sets (or moves) a timer: a recomputed target replaces the old due time.
    pub fn schedule(&mut self, timer: T, due_at: Timestamp) {
        if let Some(old) = self.due_of.insert(timer, due_at) {
            self.by_due.remove(&(old, timer));
        }
        self.by_due.insert((due_at, timer));
    }

    /// Removes a timer (the target was met, or paused); nothing if it was not set.
    pub fn cancel(&mut self, timer: T) {
        if let Some(old) = self.due_of.remove(&timer) {
            self.by_due.remove(&(old, timer));
        }
    }

    /// When the driver must wake next.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.by_due.first().map(|(due_at, _)| *due_at)
    }

    /// When `timer` is due, if it is set.
    pub fn due_at(&self, timer: &T) -> Option<Timestamp> {
        self.due_of.get(timer).copied()
    }

    /// Removes and returns the timers due at or before `now`, oldest first, at most
    /// `FIRE_BATCH_MAX`.
    pub fn fire_due(&mut self, now: Timestamp) -> Vec<Due<T>> {
        self.fire_due_max(now, FIRE_BATCH_MAX)
    }

    /// As `fire_due`, at most `max` (itself at most `FIRE_BATCH_MAX`).
    pub fn fire_due_max(&mut self, now: Timestamp, max: usize) -> Vec<Due<T>> {
        let max = max.min(FIRE_BATCH_MAX);
        let mut fired = Vec::new();
        while fired.len() < max {
            match self.by_due.first() {
                Some(&(due_at, timer)) if due_at <= now => {
                    self.by_due.pop_first();
                    self.due_of.remove(&timer);
                    fired.push(Due {
                        timer,
                        due_at,
                        command_id: timer.command_id(due_at),
                    });
                }
                _ => break,
            }
        }
        fired
    }
}

/// The deterministic command id of firing `timer` due at `due_at`: `ticket_ordered_id` of the
/// ticket and a digest of what fires.
pub fn command_id(timer: TimerId, due_at: Timestamp) -> Uuid {
    let kind: u8 = match timer.kind {
        TimerKind::Warning => 1,
        TimerKind::Breach => 2,
    };
    let digest = Sha256::new()
        .chain_update(b"docket.sla.fire.v1")
        .chain_update(timer.ticket.as_bytes())
        .chain_update(timer.clock.to_be_bytes())
        .chain_update([kind])
        .chain_update(due_at.as_nanosecond().to_be_bytes())
        .finalize();
    let mut rest = [0u8; 10];
    rest.copy_from_slice(&digest[..10]);
    ticket_ordered_id(timer.ticket, rest)
}

/// A deterministic command id (a version 8 UUID, RFC 9562's custom layout) that sorts with its
/// ticket: the first 6 bytes are the ticket id's (a version 7 ticket id starts with the
/// millisecond it was created), the other 74 bits come from `rest`, a digest of what the
/// command does to the ticket. The log's unique index of command ids is a b-tree: the fires of
/// tickets opened together, which tend to fall due together and are fired in the order the
/// tickets entered the log, land side by side in it, as their streams do in the stream index.
/// A scattered hash put each of a burst's inserts on a page of its own, and each such page is
/// written to the WAL again at every commit. Tickets whose ids are not time-ordered (imported
/// with ids of their own) get no locality from the prefix, and ids as distinct as 74 bits of a
/// digest can make them.
pub fn ticket_ordered_id(ticket: Uuid, rest: [u8; 10]) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ticket.as_bytes()[..6]);
    bytes[6..].copy_from_slice(&rest);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn timer(n: u128, kind: TimerKind) -> TimerId {
        TimerId {
            ticket: Uuid::from_u128(n),
            clock: 0,
            kind,
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    #[test]
    fn fires_in_due_order_once_and_follows_rescheduling() {
        let mut timers: Timers = Timers::default();
        timers.schedule(timer(1, TimerKind::Breach), at(30));
        timers.schedule(timer(2, TimerKind::Warning), at(10));
        timers.schedule(timer(3, TimerKind::Breach), at(20));
        // A recomputed target moves timer 3 later; a met one is cancelled.
        timers.schedule(timer(3, TimerKind::Breach), at(40));
        timers.schedule(timer(4, TimerKind::Breach), at(15));
        timers.cancel(timer(4, TimerKind::Breach));
        timers.cancel(timer(9, TimerKind::Breach));
        assert_eq!(timers.len(), 3);
        assert_eq!(timers.next_deadline(), Some(at(10)));
        assert!(timers.fire_due(at(9)).is_empty());
        let fired: Vec<(u128, i64)> = timers
            .fire_due(at(35))
            .iter()
            .map(|due| {
                (
                    due.timer.ticket.as_u128(),
                    due.due_at.as_second() - 1_800_000_000,
                )
            })
            .collect();
        assert_eq!(fired, [(2, 10), (1, 30)]);
        assert!(
            timers.fire_due(at(35)).is_empty(),
            "a fired timer does not fire again"
        );
        assert_eq!(timers.next_deadline(), Some(at(40)));
    }

    #[test]
    fn a_burst_after_downtime_comes_in_bounded_batches_oldest_first() {
        let mut timers: Timers = Timers::default();
        let total = FIRE_BATCH_MAX + 5;
        for n in 0..total {
            timers.schedule(timer(n as u128, TimerKind::Breach), at(n as i64));
        }
        let first = timers.fire_due(at(1_000_000));
        assert_eq!(first.len(), FIRE_BATCH_MAX);
        assert!(first
            .windows(2)
            .all(|pair| pair[0].due_at <= pair[1].due_at));
        let rest = timers.fire_due(at(1_000_000));
        assert_eq!(rest.len(), 5);
        assert!(timers.is_empty());
    }

    #[test]
    fn the_same_fire_has_the_same_command_id_after_a_restart() {
        let schedule = |timers: &mut Timers| {
            timers.schedule(timer(1, TimerKind::Warning), at(5));
            timers.schedule(timer(1, TimerKind::Breach), at(10));
        };
        let (mut before, mut after): (Timers, Timers) = (Timers::default(), Timers::default());
        schedule(&mut before);
        schedule(&mut after);
        assert_eq!(before.fire_due(at(10)), after.fire_due(at(10)));
        let warning = command_id(timer(1, TimerKind::Warning), at(5));
        assert_ne!(warning, command_id(timer(1, TimerKind::Breach), at(5)));
        assert_ne!(
            warning,
            command_id(timer(1, TimerKind::Warning), at(6)),
            "a moved target fires anew"
        );
    }

    #[test]
    fn fire_ids_sort_with_their_tickets_and_stay_distinct() {
        // Version 7 ticket ids, as the API makes them, opened a millisecond apart.
        let ticket = |n: u64| {
            uuid::Builder::from_unix_timestamp_millis(1_800_000_000_000 + n, &[0x5a; 10])
                .into_uuid()
        };
        let fire = |n: u64, clock: u16, kind: TimerKind| {
            command_id(
                TimerId {
                    ticket: ticket(n),
                    clock,
                    kind,
                },
                at(3_600),
            )
        };
        let ids: Vec<Uuid> = (0..1_000)
            .flat_map(|n| {
                [
                    fire(n, 0, TimerKind::Warning),
                    fire(n, 0, TimerKind::Breach),
                    fire(n, 3, TimerKind::Breach),
                ]
            })
            .collect();
        // Every fire of a later ticket sorts after every fire of an earlier one.
        assert!(ids
            .chunks(3)
            .zip(ids.chunks(3).skip(1))
            .all(|(earlier, later)| earlier.iter().max() < later.iter().min()));
        let distinct: HashSet<Uuid> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), ids.len());
        assert_eq!(ids[0].get_version_num(), 8);
        assert_eq!(ids[0].as_bytes()[..6], ticket(0).as_bytes()[..6]);
    }
}
