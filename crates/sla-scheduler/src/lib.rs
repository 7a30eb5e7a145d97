//! sla-scheduler
