//! The envelope and its wire form: signing, relaying and the canonical bytes.

use super::{
    check_schema, is_lower_hex, json_type, reject, strict_value, truncated_hash, write_str, write_u64, write_value,
    Limits, MessageType, Reason, Rejected, Value, MESSAGE_ID_LEN,
};
use crate::crypto::{KeyPair, PUBLIC_KEY_LEN, SIGNATURE_LEN};

/// Prefix of the signed bytes: domain separation from anything else the
/// same key signs (log trees, other protocols).
pub const DOMAIN_TAG: &[u8] = b"bzzz/envelope/v1\n";
/// The only envelope version.
pub const VERSION: u64 = 1;
/// Lowercase hex digits of a `msg_id`.
pub(super) const MSG_ID_HEX: usize = 32;

/// A fresh random message id: 16 random bytes as 32 lowercase hex digits.
pub fn new_msg_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// A signed envelope whose fields passed every check of its construction
/// (signed here, or parsed and verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    parts: Parts,
    sig: [u8; SIGNATURE_LEN],
    /// `DOMAIN_TAG || canon(envelope without sig)`.
    signed: Vec<u8>,
    /// Offset in `signed` just after the `seq` value, where `,"sig":..` goes in
    /// the wire form (keys sort `seq` < `sig` < `topic`).
    sig_at: usize,
}

/// The header fields, before signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Parts {
    pub(super) kind: MessageType,
    pub(super) topic: String,
    pub(super) node_id: String,
    pub(super) from: [u8; PUBLIC_KEY_LEN],
    pub(super) msg_id: String,
    pub(super) seq: u64,
    pub(super) ts: u64,
    pub(super) ttl: u32,
    pub(super) hop_count: u8,
    /// Always an object with sorted keys at every level.
    pub(super) payload: Value,
}

impl Parts {
    /// `DOMAIN_TAG || canon(envelope without sig)` and where the sig goes.
    pub(super) fn signed_bytes(&self, size_hint: usize) -> (Vec<u8>, usize) {
        let mut out = Vec::with_capacity(size_hint + DOMAIN_TAG.len() + 64);
        out.extend_from_slice(DOMAIN_TAG);
        out.extend_from_slice(b"{\"from\":\"");
        let mut hex_buf = [0u8; 2 * PUBLIC_KEY_LEN];
        // Cannot fail: the buffer is exactly twice the key's length.
        let _ = hex::encode_to_slice(self.from, &mut hex_buf);
        out.extend_from_slice(&hex_buf);
        out.extend_from_slice(b"\",\"hop_count\":");
        write_u64(&mut out, self.hop_count.into());
        out.extend_from_slice(b",\"msg_id\":");
        write_str(&mut out, &self.msg_id);
        out.extend_from_slice(b",\"node_id\":");
        write_str(&mut out, &self.node_id);
        out.extend_from_slice(b",\"payload\":");
        write_value(&mut out, &self.payload);
        out.extend_from_slice(b",\"seq\":");
        write_u64(&mut out, self.seq);
        let sig_at = out.len();
        out.extend_from_slice(b",\"topic\":");
        write_str(&mut out, &self.topic);
        out.extend_from_slice(b",\"ts\":");
        write_u64(&mut out, self.ts);
        out.extend_from_slice(b",\"ttl\":");
        write_u64(&mut out, self.ttl.into());
        out.extend_from_slice(b",\"type\":");
        write_str(&mut out, self.kind.as_str());
        out.extend_from_slice(b",\"v\":");
        write_u64(&mut out, VERSION);
        out.push(b'}');
        (out, sig_at)
    }

    fn sign(self, key_pair: &KeyPair) -> Envelope {
        let (signed, sig_at) = self.signed_bytes(256);
        let sig = key_pair.sign(&signed);
        self.into_envelope(signed, sig_at, sig)
    }

    pub(super) fn into_envelope(self, signed: Vec<u8>, sig_at: usize, sig: [u8; SIGNATURE_LEN]) -> Envelope {
        Envelope { parts: self, sig, signed, sig_at }
    }
}

impl Envelope {
    /// Sign a new envelope as `key_pair`, checking the fields as a receiver
    /// would (`malformed` for a bad `msg_id` or a float in the payload,
    /// `schema` for the rest); limits are the receiver's business.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        key_pair: &KeyPair,
        type_name: &str,
        topic: &str,
        node_id: &str,
        msg_id: &str,
        seq: u64,
        ts: u64,
        ttl: u32,
        hop_count: u8,
        mut payload: Value,
    ) -> Result<Envelope, Rejected> {
        if !is_lower_hex(msg_id, MSG_ID_HEX) {
            return reject(Reason::Malformed, format!("msg_id must be {MSG_ID_HEX} lowercase hex digits"));
        }
        // The payload sits at nesting depth 2, inside the envelope object.
        strict_value(&mut payload, 1)?;
        let Value::Object(payload_map) = &payload else {
            return reject(Reason::Schema, format!("payload must be an object, got {}", json_type(&payload)));
        };
        let Some(kind) = MessageType::parse(type_name) else {
            return reject(Reason::Schema, format!("unknown message type {type_name:?}"));
        };
        check_schema(kind, topic, node_id, payload_map)?;
        let parts = Parts {
            kind,
            topic: topic.to_owned(),
            node_id: node_id.to_owned(),
            from: key_pair.public_key(),
            msg_id: msg_id.to_owned(),
            seq,
            ts,
            ttl,
            hop_count,
            payload,
        };
        Ok(parts.sign(key_pair))
    }

    /// The same message relayed: same `msg_id`, payload and origin fields,
    /// `hop_count + 1`, signed by the relay. Refused (`hops`) past `max_hops`.
    pub fn forward(&self, key_pair: &KeyPair, limits: &Limits) -> Result<Envelope, Rejected> {
        let hop_count = match self.parts.hop_count.checked_add(1) {
            Some(h) if h <= limits.max_hops => h,
            _ => {
                return reject(
                    Reason::Hops,
                    format!(
                        "hop_count {} has reached the limit {}; not forwarding",
                        self.parts.hop_count, limits.max_hops
                    ),
                )
            }
        };
        let parts = Parts {
            kind: self.parts.kind,
            topic: self.parts.topic.clone(),
            node_id: self.parts.node_id.clone(),
            from: key_pair.public_key(),
            msg_id: self.parts.msg_id.clone(),
            seq: self.parts.seq,
            ts: self.parts.ts,
            ttl: self.parts.ttl,
            hop_count,
            payload: self.parts.payload.clone(),
        };
        Ok(parts.sign(key_pair))
    }

    /// The canonical wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = &self.signed[DOMAIN_TAG.len()..];
        let split = self.sig_at - DOMAIN_TAG.len();
        let mut out = Vec::with_capacity(body.len() + 10 + 2 * SIGNATURE_LEN);
        out.extend_from_slice(&body[..split]);
        out.extend_from_slice(b",\"sig\":\"");
        let mut hex_buf = [0u8; 2 * SIGNATURE_LEN];
        let _ = hex::encode_to_slice(self.sig, &mut hex_buf);
        out.extend_from_slice(&hex_buf);
        out.push(b'"');
        out.extend_from_slice(&body[split..]);
        out
    }

    /// What the signature covers: `DOMAIN_TAG || canon(envelope without sig)`.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.signed
    }

    /// The gossipsub message id: [`message_id`](super::message_id) of [`Envelope::to_bytes`].
    pub fn message_id(&self) -> [u8; MESSAGE_ID_LEN] {
        truncated_hash(&self.to_bytes())
    }

    pub fn message_type(&self) -> MessageType {
        self.parts.kind
    }
    pub fn topic(&self) -> &str {
        &self.parts.topic
    }
    pub fn node_id(&self) -> &str {
        &self.parts.node_id
    }
    /// The signer's public key (the origin, or the last relay).
    pub fn sender(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.parts.from
    }
    pub fn msg_id(&self) -> &str {
        &self.parts.msg_id
    }
    pub fn seq(&self) -> u64 {
        self.parts.seq
    }
    pub fn ts_ms(&self) -> u64 {
        self.parts.ts
    }
    pub fn ttl(&self) -> u32 {
        self.parts.ttl
    }
    pub fn hop_count(&self) -> u8 {
        self.parts.hop_count
    }
    /// The payload: an object, keys sorted at every level.
    pub fn payload(&self) -> &Value {
        &self.parts.payload
    }
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.sig
    }
    /// When the message stops being valid, in ms since the epoch.
    pub fn expires_at_ms(&self) -> u64 {
        expires_at_ms(self.parts.ts, self.parts.ttl)
    }
}

pub(super) fn expires_at_ms(ts: u64, ttl: u32) -> u64 {
    ts.saturating_add(u64::from(ttl) * 1000)
}
