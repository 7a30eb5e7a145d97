//! Human-readable ticket numbers (`#10042`), unique across every node without a lock: a node
//! reserves a block of numbers by appending to the `sequence-ticket_number` stream, whose stream
//! version k is owned by that append alone and stands for the block
//! `FIRST + (k - 1) × BLOCK .. FIRST + k × BLOCK`. Numbers left in a block when a node stops are
//! skipped, as helpdesks' numbers often are.

use serde_json::value::to_raw_value;
use store::{ExpectedVersion, NewEvent, Store, StreamId};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::error::ApiError;

pub const FIRST_NUMBER: u64 = 10_000;
pub const BLOCK_NUMBERS: u64 = 100;
const STREAM: &str = "sequence-ticket_number";

#[derive(Debug, Default)]
pub struct NumberAllocator {
    /// The next free number and the end of the block it is in.
    block: Mutex<(u64, u64)>,
}

impl NumberAllocator {
    pub async fn next(&self, store: &Store) -> Result<u64, ApiError> {
        let mut block = self.block.lock().await;
        if block.0 >= block.1 {
            let stream =
                StreamId::new(STREAM).map_err(|error| ApiError::Internal(error.to_string()))?;
            let payload =
                serde_json::json!({ "block_numbers": BLOCK_NUMBERS, "first_number": FIRST_NUMBER });
            let event = NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "TicketNumbersReserved".to_owned(),
                schema_version: 1,
                payload: to_raw_value(&payload)
                    .map_err(|error| ApiError::Internal(error.to_string()))?,
                metadata: to_raw_value(
                    &serde_json::json!({"actor": {"role": "system", "id": "numbers"}}),
                )
                .map_err(|error| ApiError::Internal(error.to_string()))?,
            };
            let outcome = store
                .append(&stream, ExpectedVersion::Any, vec![event], Uuid::now_v7())
                .await?;
            let start = FIRST_NUMBER + (outcome.stream_version - 1) * BLOCK_NUMBERS;
            *block = (start, start + BLOCK_NUMBERS);
        }
        let number = block.0;
        block.0 += 1;
        Ok(number)
    }
}
