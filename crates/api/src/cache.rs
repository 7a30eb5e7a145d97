//! The command side's cache of folded tickets, so that a command usually costs one append and no
//! read. It is only ever trusted optimistically: an append carries the version the command was
//! decided on, so a stale entry (another node moved the ticket) fails as a conflict and is caught
//! up from the log; and any answer other than "append these events" (a rejection, a no-op, a
//! failed If-Match) is checked against the log before the caller sees it. `TicketLocks` lets
//! the commands of one ticket in this process take turns, so they do not race each other to
//! the same version.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use domain::{Ticket, TicketId};

/// Most tickets kept; the oldest insertions are forgotten first.
pub const TICKET_CACHE_MAX: usize = 50_000;

#[derive(Debug, Default)]
pub struct TicketCache {
    inner: Mutex<(HashMap<TicketId, Ticket>, VecDeque<TicketId>)>,
}

impl TicketCache {
    pub fn get(&self, ticket_id: TicketId) -> Option<Ticket> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.0.get(&ticket_id).cloned()
    }

    /// Keeps `ticket` unless a newer version is already cached.
    pub fn put(&self, ticket_id: TicketId, ticket: Ticket) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (map, order) = &mut *inner;
        match map.get_mut(&ticket_id) {
            Some(cached) if cached.version >= ticket.version => {}
            Some(cached) => *cached = ticket,
            None => {
                if map.len() >= TICKET_CACHE_MAX {
                    if let Some(oldest) = order.pop_front() {
                        map.remove(&oldest);
                    }
                }
                map.insert(ticket_id, ticket);
                order.push_back(ticket_id);
            }
        }
    }
}

/// One command at a time per ticket in this process. Two commands on one ticket decided at the
/// same time (an agent's and the SLA scheduler's) would both rest on the same version, and one
/// would fail at the append and start over; taking turns, the second decides on what the
/// first left in the cache and appends once. Other nodes still meet as version conflicts.
/// An entry lives only while a command holds or awaits it, so the map holds at most the
/// commands in flight.
#[derive(Debug, Default)]
pub struct TicketLocks {
    inner: Arc<Mutex<HashMap<TicketId, Arc<tokio::sync::Mutex<()>>>>>,
}

/// The turn of one command on one ticket; the next one waiting goes when it drops.
#[derive(Debug)]
pub struct TicketTurn {
    ticket_id: TicketId,
    locks: Arc<Mutex<HashMap<TicketId, Arc<tokio::sync::Mutex<()>>>>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl TicketLocks {
    /// Waits for the ticket's turn.
    pub async fn turn(&self, ticket_id: TicketId) -> TicketTurn {
        let lock = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(ticket_id)
            .or_default()
            .clone();
        TicketTurn {
            ticket_id,
            locks: self.inner.clone(),
            guard: Some(lock.lock_owned().await),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

impl Drop for TicketTurn {
    fn drop(&mut self) {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Nobody else holds or waits for the lock when only the map and this turn point at it;
        // newcomers clone it under the map's lock, so none can slip in meanwhile.
        if locks
            .get(&self.ticket_id)
            .is_some_and(|lock| Arc::strong_count(lock) == 2)
        {
            locks.remove(&self.ticket_id);
        }
        drop(self.guard.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_on_one_ticket_take_turns_and_the_map_empties() {
        let locks = Arc::new(TicketLocks::default());
        let id = TicketId(uuid::Uuid::from_u128(1));
        let other = TicketId(uuid::Uuid::from_u128(2));
        let first = locks.turn(id).await;
        // Another ticket does not wait.
        let elsewhere = locks.turn(other).await;
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
        assert_eq!(locks.len(), 2);
        drop(second);
        drop(elsewhere);
        assert_eq!(locks.len(), 0, "no entry outlives its commands");
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
