//! Hashing: lowercase hex, SHA-256, and the event log's hash chain. Each event's hash covers
//! its content as stored and the previous event's hash, domain-separated and per transition, so
//! that an edit, a removal, an insertion or a reordering of stored events shows on verification.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The "previous hash" of a transition's first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// Domain separation: no other hash opsgate computes starts like this.
const CHAIN_DOMAIN: &[u8] = b"opsgate.v1/event-chain\0";

/// One event as stored: exactly the columns the hash covers.
#[derive(Debug, Clone, Copy)]
pub struct StoredEvent<'a> {
    pub transition_id: &'a str,
    pub seq: u64,
    pub kind: &'a str,
    pub actor: &'a str,
    pub at: DateTime<Utc>,
    /// The payload column's text (the event kind as JSON).
    pub payload: &'a str,
    /// The attribution column's text, if any.
    pub attribution: Option<&'a str>,
}

/// The hash of `event` following `prev`: SHA-256 over the domain, `prev` and every field,
/// each field length-prefixed (so no two different events share an encoding).
pub fn event_hash(prev: &[u8; 32], event: &StoredEvent<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(CHAIN_DOMAIN);
    h.update(prev);
    let at = event.at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let seq = event.seq.to_string();
    for field in [
        event.transition_id,
        seq.as_str(),
        event.kind,
        event.actor,
        at.as_str(),
        event.payload,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    match event.attribution {
        Some(a) => {
            h.update([1]);
            h.update((a.len() as u64).to_be_bytes());
            h.update(a.as_bytes());
        }
        None => h.update([0]),
    }
    h.finalize().into()
}

/// `bytes` as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The bytes of a hex string; `None` when it is not one.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A 32-byte hash from its hex; `None` when it is not one.
pub fn unhex32(text: &str) -> Option<[u8; 32]> {
    unhex(text)?.try_into().ok()
}

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes = vec![0u8, 1, 127, 128, 255];
        assert_eq!(hex(&bytes), "00017f80ff");
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(sha256_hex(b"").len(), 64);
        assert_eq!(unhex32(&hex(&[7; 32])), Some([7; 32]));
        assert_eq!(unhex32("00"), None);
    }

    #[test]
    fn every_field_and_the_previous_hash_change_the_hash() {
        let at = DateTime::from_timestamp(1_700_000_000, 123_000).unwrap_or_default();
        let base = StoredEvent {
            transition_id: "t",
            seq: 1,
            kind: "deliverable_submitted",
            actor: "Pat",
            at,
            payload: "{}",
            attribution: None,
        };
        let h = event_hash(&GENESIS, &base);
        let variants = [
            StoredEvent {
                transition_id: "u",
                ..base
            },
            StoredEvent { seq: 2, ..base },
            StoredEvent { kind: "x", ..base },
            StoredEvent {
                actor: "Sam",
                ..base
            },
            StoredEvent {
                at: at + chrono::Duration::microseconds(1),
                ..base
            },
            StoredEvent {
                payload: "{ }",
                ..base
            },
            StoredEvent {
                attribution: Some(""),
                ..base
            },
        ];
        for v in variants {
            assert_ne!(event_hash(&GENESIS, &v), h, "{v:?}");
        }
        assert_ne!(event_hash(&[1; 32], &base), h);
        // Moving a byte between fields changes the hash (fields are length-prefixed).
        let a = StoredEvent {
            kind: "ab",
            actor: "c",
            ..base
        };
        let b = StoredEvent {
            kind: "a",
            actor: "bc",
            ..base
        };
        assert_ne!(event_hash(&GENESIS, &a), event_hash(&GENESIS, &b));
    }
}
