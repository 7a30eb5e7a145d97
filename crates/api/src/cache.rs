//! The command side's cache of folded tickets, so that a command usually costs one append and no
//! read. It is only ever trusted optimistically: an append carries the version the command was
//! decided on, so a stale entry (another node moved the ticket) fails as a conflict and is caught
//! up from the log; and any answer other than "append these events" (a rejection, a no-op, a
//! failed If-Match) is checked against the log before the caller sees it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

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

#[cfg(test)]
mod tests {
    use super::*;

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
