//! Integration tests for the ticket domain.
