//! Request metadata keys of the wire contract, and how a person's name travels in them.
//!
//! gRPC metadata values are visible ASCII, while names are Unicode (`José Müller`). A name goes
//! either percent-encoded (UTF-8 bytes as `%XX`) in `x-opsgate-actor`, or as raw UTF-8 in the
//! binary header `x-opsgate-actor-bin` (base64 on the wire, decoded by every gRPC library).
//! [`encode_actor`] gives the text form; plain ASCII names without `%` are sent as they are.

/// Metadata key naming the acting person on mutating RPCs (text; percent-encoded when needed).
pub const ACTOR_METADATA_KEY: &str = "x-opsgate-actor";
/// The binary form of [`ACTOR_METADATA_KEY`]: the name as UTF-8 bytes.
pub const ACTOR_BIN_METADATA_KEY: &str = "x-opsgate-actor-bin";

/// Metadata key of a mutation's idempotency key: a retry with the same key gets the first answer.
pub const IDEMPOTENCY_KEY_METADATA_KEY: &str = "idempotency-key";
/// Metadata key of the credential: `authorization: Bearer og_...`.
pub const AUTHORIZATION_METADATA_KEY: &str = "authorization";

/// `name` as the value of [`ACTOR_METADATA_KEY`]: visible ASCII stays, everything else (and `%`
/// itself) becomes `%XX` of its UTF-8 bytes.
pub fn encode_actor(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if (b' '..=b'~').contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The name carried by a text value of [`ACTOR_METADATA_KEY`]: `%XX` sequences decoded as UTF-8.
/// `None` when a `%` is not followed by two hex digits or the bytes are not UTF-8.
pub fn decode_actor(value: &str) -> Option<String> {
    if !value.contains('%') {
        return Some(value.to_owned());
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_text_form() {
        for name in [
            "Pat Doe",
            "José Müller",
            "100% Dana",
            "李小龍",
            "a\u{1F600}b",
        ] {
            let encoded = encode_actor(name);
            assert!(
                encoded.bytes().all(|b| (b' '..=b'~').contains(&b)),
                "{encoded}"
            );
            assert_eq!(decode_actor(&encoded).as_deref(), Some(name));
        }
        assert_eq!(encode_actor("Pat Doe"), "Pat Doe");
        assert_eq!(encode_actor("José"), "Jos%C3%A9");
    }

    #[test]
    fn malformed_escapes_are_refused() {
        for bad in ["50%", "%zz", "%C3", "%FF%FE"] {
            assert_eq!(decode_actor(bad), None, "{bad}");
        }
    }
}
