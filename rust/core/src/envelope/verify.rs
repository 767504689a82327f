//! Steps 1 to 8 of the checks: an envelope received as bytes, parsed,
//! checked and its signature verified (one by one or as a batch).

use super::{
    check_schema, expires_at_ms, is_lower_hex, json_type, parse_strict, reject, Envelope, KeyCache, Limits, Map,
    MessageType, Parts, Reason, Rejected, Value, MSG_ID_HEX, VERSION,
};
use crate::crypto::{self, PublicKey, PUBLIC_KEY_LEN, SIGNATURE_LEN};

/// Every top-level field of an envelope, in canonical order.
pub(super) const ENVELOPE_KEYS: [&str; 12] =
    ["from", "hop_count", "msg_id", "node_id", "payload", "seq", "sig", "topic", "ts", "ttl", "type", "v"];

fn schema_err(message: String) -> Rejected {
    Rejected::new(Reason::Schema, message)
}

fn take(map: &mut Map<String, Value>, key: &str) -> Result<Value, Rejected> {
    map.remove(key).ok_or_else(|| schema_err(format!("{key} is missing")))
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> Result<String, Rejected> {
    match take(map, key)? {
        Value::String(s) => Ok(s),
        other => Err(schema_err(format!("{key} must be a string, got {}", json_type(&other)))),
    }
}

fn take_uint(map: &mut Map<String, Value>, key: &str, max: u64) -> Result<u64, Rejected> {
    let value = take(map, key)?;
    match value.as_u64() {
        Some(n) if n <= max => Ok(n),
        _ if value.is_number() => Err(schema_err(format!("{key} must be in 0..={max}"))),
        _ => Err(schema_err(format!("{key} must be an integer, got {}", json_type(&value)))),
    }
}

fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if !is_lower_hex(s, 2 * N) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Steps 2 and 3 of the checks: accepted JSON, hex, schema.
fn decode(bytes: &[u8]) -> Result<(Parts, [u8; SIGNATURE_LEN]), Rejected> {
    let Value::Object(mut map) = parse_strict(bytes)? else {
        return reject(Reason::Malformed, "an envelope must be a JSON object");
    };
    for (key, digits) in [("from", 2 * PUBLIC_KEY_LEN), ("msg_id", MSG_ID_HEX), ("sig", 2 * SIGNATURE_LEN)] {
        if let Some(Value::String(s)) = map.get(key) {
            if !is_lower_hex(s, digits) {
                return reject(Reason::Malformed, format!("{key} must be {digits} lowercase hex digits"));
            }
        }
    }
    if let Some(key) = map.keys().find(|k| !ENVELOPE_KEYS.contains(&k.as_str())) {
        return reject(Reason::Schema, format!("unknown envelope field {key:?}"));
    }
    match map.get("v") {
        Some(v) if v.as_u64() == Some(VERSION) => {}
        Some(v) => return reject(Reason::Schema, format!("unsupported envelope version {v}")),
        None => return reject(Reason::Schema, "v is missing"),
    }
    let from = take_string(&mut map, "from")?;
    let hop_count = take_uint(&mut map, "hop_count", u8::MAX.into())? as u8;
    let msg_id = take_string(&mut map, "msg_id")?;
    let node_id = take_string(&mut map, "node_id")?;
    let payload = take(&mut map, "payload")?;
    let seq = take_uint(&mut map, "seq", u64::MAX)?;
    let sig = take_string(&mut map, "sig")?;
    let topic = take_string(&mut map, "topic")?;
    let ts = take_uint(&mut map, "ts", u64::MAX)?;
    let ttl = take_uint(&mut map, "ttl", u32::MAX.into())? as u32;
    let type_name = take_string(&mut map, "type")?;

    let Value::Object(payload_map) = &payload else {
        return reject(Reason::Schema, format!("payload must be an object, got {}", json_type(&payload)));
    };
    let Some(kind) = MessageType::parse(&type_name) else {
        return reject(Reason::Schema, format!("unknown message type {type_name:?}"));
    };
    check_schema(kind, &topic, &node_id, payload_map)?;
    // Checked as hex above; now known to be present strings.
    let (Some(from), Some(sig)) = (decode_hex::<PUBLIC_KEY_LEN>(&from), decode_hex::<SIGNATURE_LEN>(&sig)) else {
        return reject(Reason::Malformed, "from and sig must be lowercase hex");
    };
    Ok((Parts { kind, topic, node_id, from, msg_id, seq, ts, ttl, hop_count, payload }, sig))
}

/// Steps 4 to 7: hops, ttl, skew, expiry.
fn check_limits(parts: &Parts, limits: &Limits, now_ms: u64) -> Result<(), Rejected> {
    if parts.hop_count > limits.max_hops {
        return reject(Reason::Hops, format!("hop_count {} is above the limit {}", parts.hop_count, limits.max_hops));
    }
    if parts.ttl > limits.max_ttl {
        return reject(Reason::Ttl, format!("ttl {} s is above the limit {} s", parts.ttl, limits.max_ttl));
    }
    if parts.ts > now_ms.saturating_add(limits.max_clock_skew_ms) {
        return reject(
            Reason::Skew,
            format!(
                "ts is {} ms in the future, more than the allowed {} ms",
                parts.ts - now_ms,
                limits.max_clock_skew_ms
            ),
        );
    }
    let expires = expires_at_ms(parts.ts, parts.ttl);
    if now_ms > expires {
        return reject(Reason::Ttl, format!("expired {} ms ago", now_ms - expires));
    }
    Ok(())
}

/// Parse, check and verify one envelope received from the network, in the
/// order of the module docs (steps 1 to 8).
pub fn parse_and_verify(bytes: &[u8], limits: &Limits, now_ms: u64) -> Result<Envelope, Rejected> {
    let unverified = check(bytes, limits, now_ms)?;
    let key = PublicKey::from_bytes(&unverified.parts.from).ok();
    unverified.verify(key.as_ref())
}

/// [`parse_and_verify`] with the sender's key from `keys`.
pub fn parse_and_verify_cached(
    bytes: &[u8],
    limits: &Limits,
    now_ms: u64,
    keys: &KeyCache,
) -> Result<Envelope, Rejected> {
    let unverified = check(bytes, limits, now_ms)?;
    let key = keys.get(&unverified.parts.from);
    unverified.verify(key.as_ref())
}

/// [`parse_and_verify`] for many envelopes at once, results in input order.
///
/// The signatures that reach step 8 are checked together by batch verification
/// ([`crypto::verify_batch`], about twice the throughput); if the batch fails,
/// each is checked on its own so that only the bad ones are refused. A batch
/// accepts what one-by-one checking accepts, and also a valid signature whose
/// `R` was re-encoded with a small-order point added: the same message, signed
/// by the same key, never a forgery (see `crypto::verify_batch`).
pub fn parse_and_verify_batch(
    items: &[&[u8]],
    limits: &Limits,
    now_ms: u64,
    keys: &KeyCache,
) -> Vec<Result<Envelope, Rejected>> {
    let mut checked: Vec<Result<(Unverified, Option<PublicKey>), Rejected>> = items
        .iter()
        .map(|bytes| {
            check(bytes, limits, now_ms).map(|u| {
                let key = keys.get(&u.parts.from);
                (u, key)
            })
        })
        .collect();
    let ready: Vec<usize> =
        checked.iter().enumerate().filter_map(|(i, c)| matches!(c, Ok((_, Some(_)))).then_some(i)).collect();
    let all_good = ready.len() >= 2 && {
        let mut messages = Vec::with_capacity(ready.len());
        let mut sigs = Vec::with_capacity(ready.len());
        let mut batch_keys = Vec::with_capacity(ready.len());
        for &i in &ready {
            if let Ok((u, Some(key))) = &checked[i] {
                messages.push(u.signed.as_slice());
                sigs.push(u.sig);
                batch_keys.push(key);
            }
        }
        crypto::verify_batch(&messages, &sigs, &batch_keys)
    };
    checked
        .drain(..)
        .map(|c| {
            let (unverified, key) = c?;
            if all_good && key.is_some() {
                Ok(unverified.into_envelope())
            } else {
                unverified.verify(key.as_ref())
            }
        })
        .collect()
}

/// An envelope that passed steps 1 to 7, its signature not yet checked.
struct Unverified {
    parts: Parts,
    sig: [u8; SIGNATURE_LEN],
    signed: Vec<u8>,
    sig_at: usize,
}

impl Unverified {
    /// Step 8 with the sender's key (`None`: `from` is not a key).
    fn verify(self, key: Option<&PublicKey>) -> Result<Envelope, Rejected> {
        let Some(key) = key else {
            return reject(Reason::Signature, "from is not a valid ed25519 public key");
        };
        if !key.verify(&self.signed, &self.sig) {
            return reject(Reason::Signature, "the signature does not verify for the key in from");
        }
        Ok(self.into_envelope())
    }

    fn into_envelope(self) -> Envelope {
        self.parts.into_envelope(self.signed, self.sig_at, self.sig)
    }
}

/// Steps 1 to 7.
fn check(bytes: &[u8], limits: &Limits, now_ms: u64) -> Result<Unverified, Rejected> {
    if bytes.len() > limits.max_size {
        return reject(Reason::Size, format!("{} bytes, more than the limit {}", bytes.len(), limits.max_size));
    }
    let (parts, sig) = decode(bytes)?;
    check_limits(&parts, limits, now_ms)?;
    let (signed, sig_at) = parts.signed_bytes(bytes.len());
    Ok(Unverified { parts, sig, signed, sig_at })
}
