//! The compact form a leader keeps every ticket's SLA state in. `TicketSla` (the engine's
//! working form) is convenient to fold but large; a leader holds one per open ticket, a million
//! timers' worth, so between events each ticket is kept packed: instants and durations as `i64`
//! nanoseconds, strings (tiers, ticket types, policy ids) as indexes into a process-wide
//! interned table, flags in a byte, and only the clocks that ever started (a ticket rarely has
//! all four). `pack` then `unpack` gives back the same `TicketSla`, exactly (tested below and by
//! the simulation, which folds through it).
//!
//! Range: nanoseconds in an `i64` cover 1677 to 2262. An instant outside is clamped to that
//! range; such a due time never comes due while the clamped one would, and both sides of every
//! comparison the engine makes clamp alike.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};

use domain::{Channel, Priority, RecomputeCause, StateCategory, TeamId, TicketId};
use jiff::{SignedDuration, Timestamp};

use crate::engine::{Clock, TicketSla};
use crate::policy::Metric;

/// Most distinct interned strings (tiers, ticket types, policy ids): each is kept for the life
/// of the process, so the table is bounded.
pub const INTERNED_MAX: usize = 1 << 20;

#[derive(Debug, Default)]
struct Interned {
    names: Vec<&'static str>,
    index: HashMap<&'static str, u32>,
}

fn table() -> &'static RwLock<Interned> {
    static TABLE: OnceLock<RwLock<Interned>> = OnceLock::new();
    TABLE.get_or_init(RwLock::default)
}

/// The interned copy of `name`, and its index.
fn intern_index(name: &str) -> (&'static str, u32) {
    {
        let interned = table().read().unwrap_or_else(PoisonError::into_inner);
        if let Some(&index) = interned.index.get(name) {
            return (interned.names[index as usize], index);
        }
    }
    let mut interned = table().write().unwrap_or_else(PoisonError::into_inner);
    if let Some(&index) = interned.index.get(name) {
        return (interned.names[index as usize], index);
    }
    assert!(
        interned.names.len() < INTERNED_MAX,
        "more than {INTERNED_MAX} distinct SLA names (tiers, ticket types, policy ids)"
    );
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    let index = interned.names.len() as u32;
    interned.names.push(leaked);
    interned.index.insert(leaked, index);
    (leaked, index)
}

/// The interned copy of `name`: equal names give the same `&'static str`.
pub fn intern(name: &str) -> &'static str {
    intern_index(name).0
}

fn name_of(index: u32) -> &'static str {
    table().read().unwrap_or_else(PoisonError::into_inner).names[index as usize]
}

const NONE_I64: i64 = i64::MIN;
const NONE_U32: u32 = u32::MAX;
const NONE_U16: u16 = u16::MAX;

fn nanos(at: Timestamp) -> i64 {
    i64::try_from(at.as_nanosecond()).unwrap_or(if at > Timestamp::UNIX_EPOCH {
        i64::MAX
    } else {
        NONE_I64 + 1
    })
}

fn instant(nanos: i64) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(nanos)).expect("an i64 of nanoseconds is in range")
}

fn pack_at(at: Option<Timestamp>) -> i64 {
    at.map_or(NONE_I64, nanos)
}

fn unpack_at(nanos: i64) -> Option<Timestamp> {
    (nanos != NONE_I64).then(|| instant(nanos))
}

fn duration_nanos(duration: SignedDuration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(if duration.is_negative() {
        NONE_I64 + 1
    } else {
        i64::MAX
    })
}

fn pack_name(name: Option<&'static str>) -> u32 {
    name.map_or(NONE_U32, |name| intern_index(name).1)
}

/// Policy ids have a table of their own, small enough to index with 16 bits.
#[derive(Debug, Default)]
struct PolicyIds {
    ids: Vec<&'static str>,
    index: HashMap<&'static str, u16>,
}

/// Most distinct policy ids a process packs (every version of `docket.toml` it ever read).
pub const POLICY_IDS_MAX: usize = NONE_U16 as usize;

fn policy_ids() -> &'static RwLock<PolicyIds> {
    static TABLE: OnceLock<RwLock<PolicyIds>> = OnceLock::new();
    TABLE.get_or_init(RwLock::default)
}

fn pack_policy(id: Option<&'static str>) -> u16 {
    let Some(id) = id else {
        return NONE_U16;
    };
    if let Some(&index) = policy_ids()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .index
        .get(id)
    {
        return index;
    }
    let mut table = policy_ids().write().unwrap_or_else(PoisonError::into_inner);
    if let Some(&index) = table.index.get(id) {
        return index;
    }
    assert!(
        table.ids.len() < POLICY_IDS_MAX,
        "more than {POLICY_IDS_MAX} distinct SLA policy ids"
    );
    let index = table.ids.len() as u16;
    table.ids.push(id);
    table.index.insert(id, index);
    index
}

fn unpack_policy(index: u16) -> Option<&'static str> {
    (index != NONE_U16).then(|| {
        policy_ids()
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .ids[usize::from(index)]
    })
}

const ACTIVE: u32 = 1;
const WARNED: u32 = 2;
const BREACHED: u32 = 4;

fn pack_cause(cause: Option<RecomputeCause>) -> u8 {
    match cause {
        None => 0,
        Some(RecomputeCause::NewCycle) => 1,
        Some(RecomputeCause::Resumed) => 2,
        Some(RecomputeCause::PriorityChanged) => 3,
        Some(RecomputeCause::PolicyChanged) => 4,
    }
}

fn unpack_cause(cause: u8) -> Option<RecomputeCause> {
    match cause {
        1 => Some(RecomputeCause::NewCycle),
        2 => Some(RecomputeCause::Resumed),
        3 => Some(RecomputeCause::PriorityChanged),
        4 => Some(RecomputeCause::PolicyChanged),
        _ => None,
    }
}

/// Most cycles of one metric on one ticket that the packed form holds (24 bits): each cycle
/// takes a customer message and an agent reply, so no ticket comes near it.
pub const CYCLES_MAX: u32 = (1 << 24) - 1;

/// One metric's clock, packed: 76 bytes instead of 240. Aligned to 4, not 8: the recompute
/// count's 4 bytes would otherwise cost 8, and two clocks of 76 bytes take the same allocation
/// as two of 72 did (the measured resident size per timer is what counts, docs/PERFORMANCE.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, packed(4))]
pub struct PackedClock {
    since: i64,
    stopped_at: i64,
    met_at: i64,
    due_at: i64,
    warn_at: i64,
    recorded_due: i64,
    elapsed: i64,
    target: i64,
    recomputes: u32,
    /// The cycle in the low 24 bits; the metric (2 bits), the flags (3) and the cause (3) above.
    cycle_and_bits: u32,
    recorded_policy: u16,
    computed_for: u16,
}

impl PackedClock {
    fn pack(metric: Metric, clock: &Clock) -> PackedClock {
        assert!(
            clock.cycle <= CYCLES_MAX,
            "a clock past {CYCLES_MAX} cycles does not pack"
        );
        let flag = |set: bool, bit: u32| if set { bit } else { 0 };
        let flags = flag(clock.active, ACTIVE)
            | flag(clock.warned, WARNED)
            | flag(clock.breached, BREACHED);
        PackedClock {
            since: pack_at(clock.since),
            stopped_at: pack_at(clock.stopped_at),
            met_at: pack_at(clock.met_at),
            due_at: pack_at(clock.due_at),
            warn_at: pack_at(clock.warn_at),
            recorded_due: pack_at(clock.recorded_due),
            elapsed: duration_nanos(clock.elapsed),
            target: clock.target.map_or(NONE_I64, duration_nanos),
            recomputes: clock.recomputes,
            cycle_and_bits: clock.cycle
                | ((metric.index() as u32) << 24)
                | (flags << 26)
                | (u32::from(pack_cause(clock.cause)) << 29),
            recorded_policy: pack_policy(clock.recorded_policy),
            computed_for: clock.computed_for.map_or(NONE_U16, |policy| {
                u16::try_from(policy).expect("policies are counted in u16")
            }),
        }
    }

    fn metric(&self) -> usize {
        ((self.cycle_and_bits >> 24) & 0b11) as usize
    }

    fn flags(&self) -> u32 {
        (self.cycle_and_bits >> 26) & 0b111
    }

    fn unpack(&self) -> Clock {
        Clock {
            active: self.flags() & ACTIVE != 0,
            cycle: self.cycle_and_bits & CYCLES_MAX,
            since: unpack_at(self.since),
            stopped_at: unpack_at(self.stopped_at),
            elapsed: SignedDuration::from_nanos(self.elapsed),
            met_at: unpack_at(self.met_at),
            due_at: unpack_at(self.due_at),
            warn_at: unpack_at(self.warn_at),
            target: (self.target != NONE_I64).then(|| SignedDuration::from_nanos(self.target)),
            computed_for: (self.computed_for != NONE_U16).then_some(usize::from(self.computed_for)),
            cause: unpack_cause((self.cycle_and_bits >> 29) as u8),
            recorded_policy: unpack_policy(self.recorded_policy),
            recorded_due: unpack_at(self.recorded_due),
            recomputes: self.recomputes,
            warned: self.flags() & WARNED != 0,
            breached: self.flags() & BREACHED != 0,
        }
    }
}

/// One ticket's SLA state, packed. Clocks that never started (all defaults) are not stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedTicket {
    ticket_id: TicketId,
    team: Option<TeamId>,
    clocks: Box<[PackedClock]>,
    tier: u32,
    ticket_type: u32,
    policy: u16,
    priority: Priority,
    channel: Channel,
    category: StateCategory,
    applied: bool,
}

impl PackedTicket {
    pub fn pack(ticket: &TicketSla) -> PackedTicket {
        let mut packed = PackedTicket {
            ticket_id: ticket.ticket_id,
            team: ticket.team,
            clocks: Box::new([]),
            tier: pack_name(Some(ticket.tier)),
            ticket_type: pack_name(Some(ticket.ticket_type)),
            policy: NONE_U16,
            priority: ticket.priority,
            channel: ticket.channel,
            category: ticket.category,
            applied: ticket.applied,
        };
        packed.repack(ticket);
        packed
    }

    /// Packs `ticket` (the same ticket, after an event) in place, reusing the clocks' storage
    /// when their number did not change.
    pub fn repack(&mut self, ticket: &TicketSla) {
        assert_eq!(self.ticket_id, ticket.ticket_id, "repacking another ticket");
        self.team = ticket.team;
        self.tier = pack_name(Some(ticket.tier));
        self.ticket_type = pack_name(Some(ticket.ticket_type));
        self.policy = ticket.policy.map_or(NONE_U16, |policy| {
            u16::try_from(policy).expect("policies are counted in u16")
        });
        self.priority = ticket.priority;
        self.channel = ticket.channel;
        self.category = ticket.category;
        self.applied = ticket.applied;
        let started = || {
            Metric::ALL
                .into_iter()
                .filter(|metric| ticket.clocks[metric.index()] != Clock::default())
        };
        if started().count() == self.clocks.len() {
            for (slot, metric) in self.clocks.iter_mut().zip(started()) {
                *slot = PackedClock::pack(metric, &ticket.clocks[metric.index()]);
            }
        } else {
            self.clocks = started()
                .map(|metric| PackedClock::pack(metric, &ticket.clocks[metric.index()]))
                .collect();
        }
    }

    pub fn ticket_id(&self) -> TicketId {
        self.ticket_id
    }

    pub fn unpack(&self) -> TicketSla {
        let mut clocks: [Clock; 4] = Default::default();
        for clock in &self.clocks {
            clocks[clock.metric()] = clock.unpack();
        }
        TicketSla {
            ticket_id: self.ticket_id,
            tier: name_of(self.tier),
            priority: self.priority,
            channel: self.channel,
            ticket_type: name_of(self.ticket_type),
            team: self.team,
            category: self.category,
            policy: (self.policy != NONE_U16).then_some(usize::from(self.policy)),
            clocks,
            applied: self.applied,
        }
    }

    /// Bytes this ticket holds on the heap, beyond its own size.
    pub fn heap_bytes(&self) -> usize {
        size_of_val(&*self.clocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn packing_gives_back_the_same_ticket() {
        let mut ticket = TicketSla {
            ticket_id: TicketId(uuid::Uuid::from_u128(7)),
            tier: intern("vip"),
            priority: Priority::High,
            channel: Channel::Email,
            ticket_type: intern("incident"),
            team: Some(TeamId(uuid::Uuid::from_u128(9))),
            category: StateCategory::Pending,
            policy: Some(3),
            clocks: Default::default(),
            applied: true,
        };
        ticket.clocks[Metric::NextReply.index()] = Clock {
            active: true,
            cycle: 4,
            since: Some(at("2026-03-29T01:30:00.123456789Z")),
            stopped_at: None,
            elapsed: SignedDuration::from_nanos(5_400_000_000_123),
            met_at: Some(at("1970-01-01T00:00:00Z")),
            due_at: Some(at("2262-04-11T23:47:16.854775807Z")),
            warn_at: Some(at("1677-09-21T00:12:43.145224193Z")),
            target: Some(SignedDuration::ZERO),
            computed_for: Some(0),
            cause: Some(RecomputeCause::PolicyChanged),
            recorded_policy: Some(intern("gold")),
            recorded_due: Some(at("2026-10-25T00:00:00Z")),
            recomputes: u32::MAX,
            warned: true,
            breached: false,
        };
        ticket.clocks[Metric::Resolution.index()].breached = true;
        let packed = PackedTicket::pack(&ticket);
        assert_eq!(
            packed.clocks.len(),
            2,
            "clocks that never started are not kept"
        );
        assert_eq!(packed.unpack(), ticket);
        let mut repacked = packed.clone();
        ticket.clocks[Metric::FirstResponse.index()].cycle = 1;
        repacked.repack(&ticket);
        assert_eq!(repacked.unpack(), ticket);
        assert_eq!(size_of::<PackedClock>(), 76);
    }

    #[test]
    fn instants_beyond_nanosecond_range_clamp_alike() {
        let far = at("3000-01-01T00:00:00Z");
        assert_eq!(unpack_at(pack_at(Some(far))), unpack_at(pack_at(Some(far))));
        assert_eq!(unpack_at(pack_at(None)), None);
        assert_eq!(intern("a"), intern(&String::from("a")));
    }
}
