//! Customer history: per customer, their tickets, the channels they used, the CSAT they gave,
//! and lifetime counts.

use std::collections::BTreeMap;

use domain::{Channel, CustomerId, Event, StateCategory, TicketId, TicketNumber};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Map, Projection, TicketEvent};

/// Most tickets one history page lists.
pub const HISTORY_PAGE_MAX: usize = 200;

/// One ticket in a customer's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryTicket {
    pub ticket_id: TicketId,
    pub number: TicketNumber,
    pub channel: Channel,
    pub created_at: Timestamp,
    pub category: StateCategory,
}

/// One CSAT rating a customer gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    pub ticket_id: TicketId,
    pub score: u8,
    pub at: Timestamp,
}

/// A customer's history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerHistory {
    /// In creation order.
    pub tickets: Vec<HistoryTicket>,
    /// Tickets opened per channel.
    pub channels: BTreeMap<String, u32>,
    pub ratings: Vec<Rating>,
    /// Lifetime counts.
    pub created: u32,
    pub solved: u32,
    pub reopened: u32,
}

/// The customer history view.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Customers {
    customers: Map<CustomerId, CustomerHistory>,
    /// Who asked, per ticket, to place later events.
    requesters: Map<TicketId, (CustomerId, u32)>,
}

/// The channel's name as the API spells it (its serde name, checked by a test).
fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Web => "web",
        Channel::Chat => "chat",
        Channel::Phone => "phone",
        Channel::Social => "social",
        Channel::App => "app",
        Channel::Api => "api",
    }
}

impl Projection for Customers {
    const NAME: &'static str = "customers";
    const VERSION: u32 = 1;

    fn apply_event(&mut self, event: &TicketEvent) {
        let id = event.ticket_id;
        if let Event::TicketCreated(created) = &event.event {
            if self.requesters.contains_key(&id) {
                return;
            }
            let history = self.customers.entry(created.requester).or_default();
            let index = u32::try_from(history.tickets.len()).unwrap_or(u32::MAX);
            history.tickets.push(HistoryTicket {
                ticket_id: id,
                number: created.number,
                channel: created.channel,
                created_at: event.at,
                category: created.category,
            });
            let channel = channel_name(created.channel);
            match history.channels.get_mut(channel) {
                Some(count) => *count += 1,
                None => {
                    history.channels.insert(channel.to_owned(), 1);
                }
            }
            history.created += 1;
            self.requesters.insert(id, (created.requester, index));
            return;
        }
        // Most events are none of these: they are dropped before the three lookups below.
        if !matches!(
            &event.event,
            Event::TicketTransitioned(_)
                | Event::TicketReopened(_)
                | Event::TicketMergedInto(_)
                | Event::SatisfactionRated(_)
        ) {
            return;
        }
        let Some(&(customer, index)) = self.requesters.get(&id) else {
            return;
        };
        let Some(history) = self.customers.get_mut(&customer) else {
            return;
        };
        let Some(ticket) = history.tickets.get_mut(index as usize) else {
            return;
        };
        let category = match &event.event {
            Event::TicketTransitioned(transitioned) => transitioned.to_category,
            Event::TicketReopened(reopened) => {
                if reopened.from_category >= StateCategory::Solved {
                    history.reopened += 1;
                }
                reopened.to_category
            }
            Event::TicketMergedInto(_) => StateCategory::Closed,
            Event::SatisfactionRated(rated) => {
                history.ratings.push(Rating {
                    ticket_id: id,
                    score: rated.score,
                    at: event.at,
                });
                return;
            }
            _ => return,
        };
        if category == StateCategory::Solved && ticket.category != StateCategory::Solved {
            history.solved += 1;
        }
        ticket.category = category;
    }
}

impl Customers {
    /// A customer's history, with at most `HISTORY_PAGE_MAX` of the newest tickets.
    pub fn history(&self, customer: CustomerId) -> Option<CustomerHistory> {
        let history = self.customers.get(&customer)?;
        let mut answer = history.clone();
        let skip = answer.tickets.len().saturating_sub(HISTORY_PAGE_MAX);
        answer.tickets.drain(..skip);
        Some(answer)
    }

    /// Mean CSAT a customer gave, if any.
    pub fn csat_average(&self, customer: CustomerId) -> Option<f64> {
        let ratings = &self.customers.get(&customer)?.ratings;
        (!ratings.is_empty()).then(|| {
            ratings
                .iter()
                .map(|rating| f64::from(rating.score))
                .sum::<f64>()
                / ratings.len() as f64
        })
    }
}

#[cfg(test)]
mod tests {
    use domain::{Channel, Priority, StateCategory};
    use expect_test::expect;

    use super::*;
    use crate::synth;
    use crate::testkit::Log;

    #[test]
    fn channel_names_are_the_serde_names() {
        for channel in [
            Channel::Email,
            Channel::Web,
            Channel::Chat,
            Channel::Phone,
            Channel::Social,
            Channel::App,
            Channel::Api,
        ] {
            assert_eq!(
                serde_json::to_value(channel).expect("a channel serializes"),
                serde_json::Value::from(channel_name(channel))
            );
        }
    }

    #[test]
    fn history_counts_channels_and_ratings() {
        let mut log = Log::default();
        log.create(0, 1, "a", Priority::Normal, Channel::Email, 1)
            .create(5, 2, "b", Priority::Normal, Channel::Chat, 1)
            .create(6, 3, "c", Priority::Normal, Channel::Email, 2)
            .to(10, 1, "resolved", StateCategory::Solved)
            .rate(11, 1, 4)
            .reopen(12, 1)
            .to(13, 1, "resolved", StateCategory::Solved)
            .rate(14, 1, 2);
        let customers: Customers = log.fold();
        let history = customers.history(synth::customer(1)).unwrap();
        expect![[r#"
            tickets: [(TicketNumber(1), Solved), (TicketNumber(2), New)]
            channels: {"chat": 1, "email": 1}
            ratings: [4, 2] average Some(3.0)
            created 2 solved 2 reopened 1"#]]
        .assert_eq(&format!(
            "tickets: {:?}\nchannels: {:?}\nratings: {:?} average {:?}\ncreated {} solved {} reopened {}",
            history.tickets.iter().map(|t| (t.number, t.category)).collect::<Vec<_>>(),
            history.channels,
            history.ratings.iter().map(|r| r.score).collect::<Vec<_>>(),
            customers.csat_average(synth::customer(1)),
            history.created,
            history.solved,
            history.reopened,
        ));
        assert!(customers.history(synth::customer(9)).is_none());
    }
}
