//! Reports from events alone, over any time range, per team, agent, channel, ticket type or
//! priority.

use serde::{Deserialize, Serialize};

use crate::{Projection, TicketEvent};

/// The reports view.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reports {}

impl Projection for Reports {
    const NAME: &'static str = "reports";
    const VERSION: u32 = 1;

    fn apply_event(&mut self, _event: &TicketEvent) {}
}
