//! Automation: what Docket does on its own. Triggers fire on events when their conditions hold
//! and act through the domain's decider as the system role; macros are named bundles of actions
//! an agent applies as one command; time-based rules remind and close waiting tickets; outbound
//! webhooks deliver events to subscribers, signed, at least once.
//!
//! The cores are pure (`trigger`, `template`, `macros`, `sequence`, `timed`, the signing and
//! retry schedule of `webhook`); `manager` and the webhook dispatcher are the thin tokio shells
//! that follow the log and append. Every automatic change records the trigger and its evidence
//! in the event's metadata, and its command id is derived from what caused it, so it is
//! appended at most once. See docs/automation.md.

pub mod checkpoint;
pub mod config;
pub mod macros;
pub mod manager;
pub mod sequence;
pub mod template;
pub mod timed;
pub mod trigger;
pub mod webhook;

pub use config::{Automation, AutomationSection, ConfigError};
pub use macros::{AppliedBy, Macro, MacroError, Macros};
pub use manager::{ManagerStats, TriggerManager, AUTOMATION_ACTOR};
pub use sequence::{decide_sequence, SequenceRejection};
pub use template::{Template, TemplateError, TemplateValues};
pub use trigger::{Evidence, Facts, Firing, Plan, Trigger, TriggerSet};
pub use webhook::{
    run_elected, Clock, Dispatcher, DispatcherSetup, DispatcherStats, WebhookClient,
};
