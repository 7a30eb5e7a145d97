//! The canonical encoding of a record and the two hash chains over it (per stream and over the
//! whole log). `docs/HASH_CHAIN.md` specifies the same bytes for auditors who verify the log with
//! their own tools; the test at the bottom pins a worked example that the document repeats.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::record::Hash;

/// The first byte of both encodings; a new encoding gets a new tag, never a changed meaning.
pub const ENCODING_V1: u8 = 1;

/// The previous hash of the first record of a stream and of the first record of the log.
pub const GENESIS: Hash = [0; 32];

/// The fields of a record that its stream hash covers, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct HashInput<'a> {
    pub stream_id: &'a str,
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub recorded_at_micros: i64,
    pub command_id: Uuid,
    pub payload: &'a [u8],
    pub metadata: &'a [u8],
}

fn put_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("field lengths are bounded by EVENT_BYTES_MAX");
    hasher.update(len.to_be_bytes());
    hasher.update(bytes);
}

/// `SHA-256(0x01 ‖ prev_stream_hash ‖ stream_id ‖ stream_version ‖ event_id ‖ event_type ‖
/// schema_version ‖ recorded_at ‖ command_id ‖ payload ‖ metadata)`, strings and byte fields
/// prefixed by their length as u32 big-endian, integers big-endian, uuids as their 16 bytes.
pub fn stream_hash(prev_stream_hash: &Hash, input: &HashInput<'_>) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([ENCODING_V1]);
    hasher.update(prev_stream_hash);
    put_bytes(&mut hasher, input.stream_id.as_bytes());
    hasher.update(input.stream_version.to_be_bytes());
    hasher.update(input.event_id.as_bytes());
    put_bytes(&mut hasher, input.event_type.as_bytes());
    hasher.update(input.schema_version.to_be_bytes());
    hasher.update(input.recorded_at_micros.to_be_bytes());
    hasher.update(input.command_id.as_bytes());
    put_bytes(&mut hasher, input.payload);
    put_bytes(&mut hasher, input.metadata);
    hasher.finalize().into()
}

/// `SHA-256(0x01 ‖ prev_global_hash ‖ position ‖ stream_hash)`, position as u64 big-endian.
pub fn global_hash(prev_global_hash: &Hash, position: u64, stream_hash: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([ENCODING_V1]);
    hasher.update(prev_global_hash);
    hasher.update(position.to_be_bytes());
    hasher.update(stream_hash);
    hasher.finalize().into()
}

pub fn hex(hash: &Hash) -> String {
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example in docs/HASH_CHAIN.md: keep the two in step.
    #[test]
    fn worked_example() {
        let input = HashInput {
            stream_id: "ticket-1",
            stream_version: 1,
            event_id: Uuid::parse_str("0190b2c4-7e2a-7cc0-8000-000000000001").unwrap(),
            event_type: "TicketCreated",
            schema_version: 1,
            recorded_at_micros: 1_700_000_000_000_000,
            command_id: Uuid::parse_str("0190b2c4-7e2a-7cc0-8000-0000000000c1").unwrap(),
            payload: br#"{"subject":"hello"}"#,
            metadata: br#"{"actor":"agent-1"}"#,
        };
        let stream = stream_hash(&GENESIS, &input);
        let global = global_hash(&GENESIS, 1, &stream);
        expect_test::expect![[r#"
            stream_hash bfc59ff34447a23fa88895be5a800c740e7bb59a0169b5fbe9ce169d8dd34a7a
            global_hash 2bf181deca5ad28f981645925429aa9e4ce56275f6bfa4346761c2db1e38fcb7
        "#]]
        .assert_eq(&format!(
            "stream_hash {}\nglobal_hash {}\n",
            hex(&stream),
            hex(&global)
        ));
    }
}
