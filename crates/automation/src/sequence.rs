//! Deciding several commands on one ticket as one batch: each command is decided on the ticket
//! with the events of the commands before it folded in, and the first rejection rejects the
//! whole batch. The shell appends the events in one append, so they are atomic. Commands that
//! change nothing contribute no events, so a batch that changes nothing is no append at all.

use domain::{Command, CommandContext, Event, Rejection, Ticket};

/// Most commands in one batch: a trigger's actions, each at most a macro's six commands.
pub const SEQUENCE_COMMANDS_MAX: usize = crate::trigger::ACTIONS_MAX * 6;

/// Which command of a batch was rejected, and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("step {index} ({command}): {rejection}")]
pub struct SequenceRejection {
    pub index: usize,
    pub command: &'static str,
    pub rejection: Rejection,
}

/// Decides `commands` in order on `ticket`; the events of all of them, or the first rejection.
pub fn decide_sequence(
    commands: &[Command],
    ticket: &Ticket,
    ctx: &CommandContext<'_>,
) -> Result<Vec<Event>, SequenceRejection> {
    assert!(
        commands.len() <= SEQUENCE_COMMANDS_MAX,
        "a batch is built from bounded configuration"
    );
    let mut current = ticket.clone();
    let mut events = Vec::new();
    for (index, command) in commands.iter().enumerate() {
        let decided =
            domain::decide(command, &current, ctx).map_err(|rejection| SequenceRejection {
                index,
                command: command.name(),
                rejection,
            })?;
        current = decided.iter().fold(current, domain::evolve);
        events.extend(decided);
    }
    Ok(events)
}
