//! Agent load: per agent, the open and pending tickets they own and a load weighted by priority,
//! set against a capacity. Capacity and presence are not in the log yet (the routing issue adds
//! them), so the caller passes the capacity.

use std::collections::BTreeMap;

use domain::{AgentId, Event, Priority, StateCategory, TicketId};
use serde::{Deserialize, Serialize};

use crate::{Map, Projection, TicketEvent};

/// How much one owned, unsolved ticket weighs: an urgent ticket takes the attention of several
/// low ones.
pub fn priority_weight(priority: Priority) -> u32 {
    match priority {
        Priority::Low => 1,
        Priority::Normal => 2,
        Priority::High => 3,
        Priority::Urgent => 5,
    }
}

/// One agent's load.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Load {
    /// Owned tickets in a `new` or `open` category.
    pub open: u32,
    /// Owned tickets waiting on the customer.
    pub pending: u32,
    /// Sum of `priority_weight` over open and pending tickets.
    pub weighted: u32,
}

/// One agent's load against a capacity, as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadAnswer {
    pub agent: AgentId,
    pub open: u32,
    pub pending: u32,
    pub weighted: u32,
    pub capacity: u32,
    /// `weighted / capacity`; above 1.0 means overloaded. 0 for a zero capacity.
    pub utilization: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Owned {
    assignee: Option<AgentId>,
    priority: Priority,
    category: StateCategory,
}

/// The agent load view.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentLoad {
    /// Closed tickets are dropped: they weigh nothing, ever again.
    tickets: Map<TicketId, Owned>,
    agents: BTreeMap<AgentId, Load>,
}

impl AgentLoad {
    fn count(&mut self, owned: &Owned, sign: i64) {
        let Some(agent) = owned.assignee else {
            return;
        };
        let (open, pending) = match owned.category {
            StateCategory::New | StateCategory::Open => (1, 0),
            StateCategory::Pending => (0, 1),
            StateCategory::Solved | StateCategory::Closed => return,
        };
        let load = self.agents.entry(agent).or_default();
        let add = |value: &mut u32, amount: u32| {
            *value = if sign > 0 {
                value.saturating_add(amount)
            } else {
                value.saturating_sub(amount)
            };
        };
        add(&mut load.open, open);
        add(&mut load.pending, pending);
        add(&mut load.weighted, priority_weight(owned.priority));
        if *load == Load::default() {
            self.agents.remove(&agent);
        }
    }

    /// One agent's load (zero for an agent with nothing).
    pub fn load(&self, agent: AgentId, capacity: u32) -> LoadAnswer {
        let load = self.agents.get(&agent).cloned().unwrap_or_default();
        LoadAnswer {
            agent,
            open: load.open,
            pending: load.pending,
            weighted: load.weighted,
            capacity,
            utilization: if capacity == 0 {
                0.0
            } else {
                f64::from(load.weighted) / f64::from(capacity)
            },
        }
    }

    /// Every agent with a load, in id order, against one capacity.
    pub fn all(&self, capacity: u32) -> Vec<LoadAnswer> {
        self.agents
            .keys()
            .map(|agent| self.load(*agent, capacity))
            .collect()
    }
}

impl Projection for AgentLoad {
    const NAME: &'static str = "agent_load";
    const VERSION: u32 = 1;

    fn apply_event(&mut self, event: &TicketEvent) {
        let id = event.ticket_id;
        if let Event::TicketCreated(created) = &event.event {
            self.tickets.entry(id).or_insert(Owned {
                assignee: None,
                priority: created.priority,
                category: created.category,
            });
            return;
        }
        // Most events change no ownership, priority or category: dropped before the lookup
        // (the match below ignores the same ones).
        if !matches!(
            &event.event,
            Event::PriorityChanged(_)
                | Event::PriorityChangedByRule(_)
                | Event::AgentAssigned(_)
                | Event::AgentUnassigned(_)
                | Event::TeamTransferred(_)
                | Event::TicketTransitioned(_)
                | Event::TicketReopened(_)
                | Event::TicketMergedInto(_)
        ) {
            return;
        }
        let Some(owned) = self.tickets.get_mut(&id) else {
            return;
        };
        let before = owned.clone();
        let mut after = before.clone();
        match &event.event {
            Event::PriorityChanged(changed) => after.priority = changed.to,
            Event::PriorityChangedByRule(changed) => after.priority = changed.to,
            Event::AgentAssigned(assigned) => after.assignee = Some(assigned.to),
            Event::AgentUnassigned(_) => after.assignee = None,
            Event::TeamTransferred(transferred) if transferred.unassigned.is_some() => {
                after.assignee = None;
            }
            Event::TicketTransitioned(transitioned) => after.category = transitioned.to_category,
            Event::TicketReopened(reopened) => after.category = reopened.to_category,
            Event::TicketMergedInto(_) => after.category = StateCategory::Closed,
            _ => return,
        }
        if before == after {
            return;
        }
        owned.clone_from(&after);
        if after.category == StateCategory::Closed {
            self.tickets.remove(&id);
        }
        self.count(&before, -1);
        self.count(&after, 1);
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
    fn load_follows_ownership_state_and_priority() {
        let mut log = Log::default();
        log.create(0, 1, "a", Priority::Urgent, Channel::Email, 1)
            .create(0, 2, "b", Priority::Normal, Channel::Email, 1)
            .create(0, 3, "c", Priority::Low, Channel::Email, 1)
            .agent(1, 1, 7)
            .agent(1, 2, 7)
            .agent(1, 3, 7)
            .to(2, 2, "waiting_on_customer", StateCategory::Pending)
            .to(3, 3, "resolved", StateCategory::Solved)
            .agent(4, 1, 8)
            .priority(5, 2, Priority::High);
        let load: AgentLoad = log.fold();
        expect![[r#"
            LoadAnswer { agent: AgentId(00000000-0000-0000-0000-a9e000000007), open: 0, pending: 1, weighted: 3, capacity: 10, utilization: 0.3 }
            LoadAnswer { agent: AgentId(00000000-0000-0000-0000-a9e000000008), open: 1, pending: 0, weighted: 5, capacity: 10, utilization: 0.5 }"#]]
        .assert_eq(
            &load
                .all(10)
                .iter()
                .map(|answer| format!("{answer:?}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        assert_eq!(load.load(synth::agent(9), 0).utilization, 0.0);
    }
}
