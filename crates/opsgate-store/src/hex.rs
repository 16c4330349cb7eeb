//! Lowercase hex and the hex SHA-256 every stored hash is written as (workflow sources, token
//! secrets, idempotent requests, the event chain): the domain's, re-exported for the store.

pub use opsgate_domain::hash::{hex, sha256_hex, unhex};
