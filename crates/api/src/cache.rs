//! The command side's cache of folded tickets, so that a command usually costs one append and no
//! read. It is only ever trusted optimistically: an append carries the version the command was
//! decided on, so a stale entry (another node moved the ticket) fails as a conflict and is caught
//! up from the log; and any answer other than "append these events" (a rejection, a no-op, a
//! failed If-Match) is checked against the log before the caller sees it. `TicketLocks` lets
//! the commands of one ticket in this process take turns, so they do not race each other to
//! the same version.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use domain::{Ticket, TicketId};

/// Maps and sets keyed by ticket ids, probed for every command and every scheduled fire:
/// foldhash, where SipHash showed in the profile of a burst. Ticket ids in requests come from
/// clients; foldhash is seeded per process, which keeps chosen ids from colliding on purpose.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type Set<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Most tickets kept; the oldest insertions are forgotten first.
pub const TICKET_CACHE_MAX: usize = 50_000;

#[derive(Debug, Default)]
pub struct TicketCache {
    /// Boxed: a `Ticket` is several hundred bytes inline, and the map moved every entry each
    /// time it grew or rehashed (a burst's 100,000 puts spent 7% of its CPU in `put`).
    inner: Mutex<(Map<TicketId, Box<Ticket>>, InsertionOrder)>,
}

/// The cached ids, oldest insertion first.
type InsertionOrder = VecDeque<TicketId>;

impl TicketCache {
    pub fn get(&self, ticket_id: TicketId) -> Option<Ticket> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.0.get(&ticket_id).map(|ticket| Ticket::clone(ticket))
    }

    /// Whether a ticket is cached, without copying it.
    pub fn contains(&self, ticket_id: TicketId) -> bool {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.0.contains_key(&ticket_id)
    }

    /// Keeps `ticket` unless a newer version is already cached.
    pub fn put(&self, ticket_id: TicketId, ticket: Ticket) {
        let ticket = Box::new(ticket);
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (map, order) = &mut *inner;
        // What the cache lets go is dropped after the lock, so other commands do not wait on
        // freeing it.
        let dropped = match map.get_mut(&ticket_id) {
            Some(cached) if cached.version >= ticket.version => Some(ticket),
            Some(cached) => Some(std::mem::replace(cached, ticket)),
            None => {
                let oldest = if map.len() >= TICKET_CACHE_MAX {
                    order.pop_front().and_then(|oldest| map.remove(&oldest))
                } else {
                    None
                };
                map.insert(ticket_id, ticket);
                order.push_back(ticket_id);
                oldest
            }
        };
        drop(inner);
        drop(dropped);
    }
}

/// One command at a time per ticket in this process. Two commands on one ticket decided at the
/// same time (an agent's and the SLA scheduler's) would both rest on the same version, and one
/// would fail at the append and start over; taking turns, the second decides on what the
/// first left in the cache and appends once. Other nodes still meet as version conflicts.
#[derive(Debug)]
pub struct TicketLocks {
    inner: Mutex<Turns>,
}

#[derive(Debug)]
struct Turns {
    locks: Map<TicketId, Arc<tokio::sync::Mutex<()>>>,
    /// The size at which idle entries are swept out next.
    sweep_at: usize,
}

/// Idle entries (nobody holds or awaits them) are swept out once the map reaches this size, or
/// twice its size after the last sweep, so sweeping costs O(1) per turn. A swept entry is only
/// one nobody points at; a waiter that went away (a client hung up) leaves nothing behind.
pub const TICKET_TURNS_SWEEP_MIN: usize = 1024;

impl Default for TicketLocks {
    fn default() -> TicketLocks {
        TicketLocks {
            inner: Mutex::new(Turns {
                locks: Map::default(),
                sweep_at: TICKET_TURNS_SWEEP_MIN,
            }),
        }
    }
}

/// The turn of one command (or of a batch of scheduled work) on one ticket; the next one
/// waiting goes when it drops.
#[derive(Debug)]
pub struct TicketTurn {
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl TicketLocks {
    fn lock_of(&self, ticket_id: TicketId) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if turns.locks.len() >= turns.sweep_at {
            turns.locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            turns.sweep_at = (turns.locks.len() * 2).max(TICKET_TURNS_SWEEP_MIN);
        }
        turns.locks.entry(ticket_id).or_default().clone()
    }

    /// Waits for the ticket's turn.
    pub async fn turn(&self, ticket_id: TicketId) -> TicketTurn {
        TicketTurn {
            _guard: self.lock_of(ticket_id).lock_owned().await,
        }
    }

    /// The ticket's turn if nobody holds it now; never waits (a batch that holds many turns at
    /// once takes them this way, so it can never wait in a cycle).
    pub fn try_turn(&self, ticket_id: TicketId) -> Option<TicketTurn> {
        let guard = self.lock_of(ticket_id).try_lock_owned().ok()?;
        Some(TicketTurn { _guard: guard })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .locks
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_on_one_ticket_take_turns_and_idle_entries_are_swept() {
        let locks = Arc::new(TicketLocks::default());
        let id = TicketId(uuid::Uuid::from_u128(1));
        let first = locks.turn(id).await;
        assert!(locks.try_turn(id).is_none(), "taken");
        // Another ticket does not wait.
        let elsewhere = locks.turn(TicketId(uuid::Uuid::from_u128(2))).await;
        let waiting = tokio::spawn({
            let locks = locks.clone();
            async move { locks.turn(id).await }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "the second command waits for the first"
        );
        drop(first);
        let second = waiting.await.unwrap();
        drop(second);
        drop(elsewhere);
        assert!(locks.try_turn(id).is_some(), "free again");
        // Idle entries go at the sweep bound, held ones stay: tickets 1 and 2 and 1,022 more
        // fill the map; the next turn sweeps all but ticket 1 and adds its own.
        let held = locks.turn(id).await;
        for n in 0..(TICKET_TURNS_SWEEP_MIN - 1) as u128 {
            drop(locks.turn(TicketId(uuid::Uuid::from_u128(n + 10))).await);
        }
        assert_eq!(
            locks.len(),
            2,
            "the held entry and the one taken after the sweep"
        );
        assert!(locks.try_turn(id).is_none(), "still held");
        drop(held);
    }

    #[test]
    fn keeps_the_newest_version_and_stays_bounded() {
        let cache = TicketCache::default();
        let id = TicketId(uuid::Uuid::from_u128(1));
        cache.put(
            id,
            Ticket {
                version: 3,
                details: None,
            },
        );
        cache.put(
            id,
            Ticket {
                version: 2,
                details: None,
            },
        );
        assert_eq!(cache.get(id).map(|ticket| ticket.version), Some(3));
        for n in 0..TICKET_CACHE_MAX as u128 {
            cache.put(TicketId(uuid::Uuid::from_u128(n + 10)), Ticket::initial());
        }
        assert_eq!(cache.get(id), None, "the oldest entry made room");
        assert!(cache.inner.lock().unwrap().0.len() <= TICKET_CACHE_MAX);
    }
}
