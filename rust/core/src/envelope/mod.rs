//! The signed envelope every gossip message travels in.
//!
//! This comment is the specification other implementations follow; the
//! pure-Python reference in `tests/reference/envelope.py` is written from it.
//!
//! # Wire form
//!
//! One UTF-8 JSON object:
//!
//! ```text
//! {"from":"<64 hex>","hop_count":u8,"msg_id":"<32 hex>","node_id":str,"payload":{...},
//!  "seq":u64,"sig":"<128 hex>","topic":str,"ts":u64,"ttl":u32,"type":str,"v":1}
//! ```
//!
//! * `v` is the integer `1`.
//! * `from` is the ed25519 public key of the signer (the origin, or the last
//!   relay: see [`Envelope::forward`]); `node_id` names the origin agent.
//! * `msg_id` is 16 random bytes chosen by the origin; it stays the same when
//!   a relay forwards the message and is what dedup keys on.
//! * `seq` is the origin's own counter, `ts` milliseconds since the Unix epoch
//!   at the origin, `ttl` seconds the message stays valid after `ts`,
//!   `hop_count` how many relays it has passed (0 at the origin).
//! * every hex string is lowercase.
//!
//! A receiver accepts any key order and any insignificant whitespace; what is
//! signed and what [`Envelope::to_bytes`] emits is the canonical form below.
//!
//! # Accepted input
//!
//! RFC 8259 JSON in UTF-8 with no byte-order mark, and further:
//! * numbers are integers only: no fraction, no exponent, no `-0`, and within
//!   `-2^63 ..= 2^64-1` (an integer outside that range counts as a float);
//! * no object has the same key twice (compared after unescaping);
//! * strings hold Unicode scalar values only (an unpaired surrogate escape such
//!   as `"\ud800"` is refused);
//! * at most [`MAX_DEPTH`] nested arrays/objects, counting the envelope itself.
//!
//! Anything else is [`Reason::Malformed`].
//!
//! # Canonical encoding
//!
//! `canon(value)`:
//! * object: `{` + `canon(key)` `:` `canon(value)` pairs joined by `,` + `}`,
//!   the pairs sorted by the UTF-8 bytes of their keys (bytewise, which is the
//!   same as sorting by code point; RFC 8785 sorts by UTF-16 code units, which
//!   differs only for keys mixing U+E000..U+FFFF with characters above U+FFFF);
//! * array: `[` + `canon(item)` joined by `,` + `]`;
//! * integer: its shortest decimal form, `-` for negatives (no `+`, no leading
//!   zeros);
//! * `true`, `false`, `null`;
//! * string: `"` + the string's UTF-8 bytes + `"`, escaping as RFC 8785 (JCS)
//!   does: `"` -> `\"`, `\` -> `\\`, U+0008 -> `\b`, U+0009 -> `\t`,
//!   U+000A -> `\n`, U+000C -> `\f`, U+000D -> `\r`, any other U+0000..U+001F
//!   -> `\u00xx` with lowercase hex digits; nothing else is escaped (not `/`,
//!   not U+007F, not non-ASCII, not U+2028/U+2029).
//!
//! No whitespace anywhere. This is exactly Python's
//! `json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()`.
//!
//! The signed bytes are the ASCII domain tag [`DOMAIN_TAG`]
//! (`bzzz/envelope/v1\n`) followed by `canon(envelope without "sig")`.
//! The signature is ed25519 over them (verified strictly: non-canonical and
//! small-order signatures are refused), by the key in `from`.
//! The wire bytes are `canon(envelope with "sig")`.
//!
//! # Checks, in order (cheapest first)
//!
//! 1. `size`: more than `max_size` bytes, before any parsing;
//! 2. `malformed`: not accepted input (above), not an object, or `from`,
//!    `msg_id`, `sig` present as strings but not lowercase hex of 64, 32 and
//!    128 digits;
//! 3. `schema`: an unknown top-level field, a missing field or one of the wrong
//!    JSON type or range (`v` not 1, `seq`/`ts` not u64, `ttl` not u32,
//!    `hop_count` not u8), an unknown `type`, a type on the wrong topic, or a
//!    payload that does not follow its type's schema (below);
//! 4. `hops`: `hop_count > max_hops`;
//! 5. `ttl`: `ttl > max_ttl`;
//! 6. `skew`: `ts > now + max_clock_skew_ms` (from the future);
//! 7. `ttl`: `now > ts + ttl * 1000` (expired);
//! 8. `signature`: `from` is not an ed25519 public key, or the signature does
//!    not verify;
//! 9. `source` ([`Gate::admit_from`] only): the message arrived from a network
//!    peer that is not the signer, that is the libp2p peer id of `from`
//!    ([`peer_id`]) is not the gossip source the transport vouches for. Checked
//!    after the signature so that only an authentic envelope can be blamed on
//!    a wrong source, and before dedup so a replayed copy under another
//!    peer's name never claims the `msg_id`;
//! 10. `duplicate` ([`Gate`] only): a `msg_id` already admitted whose own
//!     validity (`ts + ttl * 1000`) has not run out.
//!
//! A gate with [`Safeguards`] then checks three more (below):
//!
//! 11. `rate`: the signer has sent faster than its token bucket allows;
//! 12. `closed`: the message's discussion has closed;
//! 13. `participants`: the signer would be one participant too many in the
//!     message's discussion.
//!
//! # Discussion safeguards
//!
//! Steps 11 to 13 keep one signer, or one discussion, from taking over a
//! receiver. They judge an authentic envelope by what came before it at this
//! receiver, not by its content, so receivers with different settings may
//! admit different messages; each field of [`Safeguards`] is configurable.
//!
//! The *signer* is `from`: the origin, or for a relayed copy the last relay,
//! so a relay's forwards count against the relay. The *discussion* of a
//! message ([`Envelope::discussion_key`]) is, for a `meta_msg`, its topic
//! (`bzzz/meta/issue/{owner}/{repo}/{number}`: one issue); for a
//! `task_help_request` or `task_help_response`, `"help:"` followed by the
//! payload's `request_id` (one request and its answers). `capabilities` and
//! `escalation` belong to no discussion.
//!
//! 11. `rate`, every type but `capabilities` (periodic state, not talk: an
//!     agent must not vanish from its peers' tables for having talked a lot).
//!     Each signer has a bucket of at most `sender_burst` tokens, full when the
//!     signer is first seen, counted in billionths of a token (so that refills
//!     add up exactly). At each message it is refilled by
//!     `round(sender_rate * (now - last refill) * 10^6)` billionths (none if
//!     `now` is earlier; the last refill becomes the later of the two), capped
//!     at `sender_burst` tokens; then with less than 1 token the message is
//!     refused and nothing is taken, otherwise 1 token is taken.
//! 12. `closed`: the message's discussion is known and either
//!     `now > opened + discussion_ttl * 1000` or it already holds
//!     `max_discussion_messages` admitted messages.
//! 13. `participants`: the signer has no admitted message in the discussion,
//!     which already has `max_participants` distinct signers.
//!
//! A message that passes every step is recorded in its discussion: one more
//! message, its signer among the participants. The first opens the
//! discussion at `opened = min(ts, now)`, so that neither a `ts` from the
//! allowed future nor a late arrival keeps it open longer. A message refused
//! at 11 to 13 keeps its step-10 entry (and at 12 or 13 the token it took):
//! its `msg_id` cannot be replayed to get in later, and the copies other
//! relays pass on are refused as `duplicate` without draining their buckets.
//! A legitimate sender writes a new message, with a new `msg_id`.
//!
//! Memory is bounded: at most `capacity` signers and `capacity` discussions
//! are remembered. A new signer at capacity evicts the one refilled longest
//! ago (of equal times, the one whose last message came first): the likeliest
//! to have a full bucket, and a full bucket is what a forgotten signer starts
//! with again. A new discussion at capacity evicts the one whose deadline
//! (`opened + discussion_ttl * 1000`) is earliest (of equal deadlines, the one
//! opened first), so closed ones go first. A forgotten discussion opens
//! afresh with its next message: once more than `capacity` discussions have
//! been opened, a closed one can reopen, and an open one can restart its count
//! when more than `capacity` are open at once. Each discussion holds at most
//! `min(max_participants, max_discussion_messages)` signers.
//!
//! # Payload schemas
//!
//! Listed fields are required and typed; other payload fields are allowed and
//! may hold any accepted JSON. "id" strings are 1..=256 bytes, "text" strings
//! 0..=8192 bytes, "name" list items 1..=256 bytes, lists at most 256 items,
//! `hex32` 32 lowercase hex digits, `hex64` 64.
//!
//! | type | topic | payload |
//! |---|---|---|
//! | `capabilities` | `bzzz/capabilities` | node_id id, peer_id id, models list of name, tools list of name, load_permille 0..=100000, active_tasks 0..=2^32-1, max_tasks 0..=2^32-1, log_key hex64, version id |
//! | `task_help_request` | `bzzz/tasks/help` | request_id hex32, task_id id, problem text, tried list of text, needs list of name |
//! | `task_help_response` | `bzzz/tasks/help` | request_id hex32, task_id id, can_help bool, text text |
//! | `meta_msg` | `bzzz/meta/issue/{owner}/{repo}/{number}` | issue_id id, parent_id hex32 or null, content {query_type one of plan objection question answer suggestion correction ack help, text text, parameters object} |
//! | `escalation` | `bzzz/meta/escalation` | issue_id id, reason text, summary text, messages list of hex32 |
//!
//! In a meta topic `owner` and `repo` are 1..=100 of `[A-Za-z0-9._-]` and
//! `number` is a decimal without leading zeros, 1..=19 digits. The envelope's
//! `node_id` is an id string and `topic` at most 256 bytes.
//!
//! # Gossip message id
//!
//! libp2p gossipsub drops a message whose id it has seen before it validates
//! anything, so the id must be a function of the content that every
//! implementation computes the same (not of who relayed it or how it was
//! spaced). [`message_id`] is the first 20 bytes of BLAKE2b-256 of the
//! canonical wire bytes (signature included). The signature is part of it on
//! purpose: were it not, a copy with a corrupted signature that arrives first
//! would claim the id and make gossipsub drop the genuine message. Only the
//! signer can make a second valid signature for the same content (strict
//! verification refuses the malleable `S + L` form), and canonicalizing makes
//! re-spaced copies of one message collapse into one id before any signature
//! is checked. Bytes that are not accepted JSON get the hash of the raw bytes.
//!
//! Equivalent spellings of one string (`` for ``, `\/` for `/`)
//! verify as the same message: the signature covers the content, not the
//! sender's spelling of it.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::sync::RwLock;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
/// The JSON value types payloads are made of (re-exported so users need not
/// depend on serde_json themselves).
pub use serde_json::{Map, Value};

use crate::crypto::{self, KeyPair, PublicKey, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::dedup::SeenCache;

/// Prefix of the signed bytes: domain separation from anything else the
/// same key signs (log trees, other protocols).
pub const DOMAIN_TAG: &[u8] = b"bzzz/envelope/v1\n";
/// The only envelope version.
pub const VERSION: u64 = 1;
/// Deepest nesting of arrays and objects accepted, the envelope object being 1.
pub const MAX_DEPTH: usize = 32;
/// Bytes of a gossip message id.
pub const MESSAGE_ID_LEN: usize = 20;

const ID_MAX: usize = 256;
const TEXT_MAX: usize = 8192;
const LIST_MAX: usize = 256;
const TOPIC_MAX: usize = 256;
const MSG_ID_HEX: usize = 32;

pub const TOPIC_CAPABILITIES: &str = "bzzz/capabilities";
pub const TOPIC_HELP: &str = "bzzz/tasks/help";
pub const TOPIC_META_ISSUE_PREFIX: &str = "bzzz/meta/issue/";
pub const TOPIC_ESCALATION: &str = "bzzz/meta/escalation";

/// The `query_type`s a `meta_msg` may carry.
pub const QUERY_TYPES: &[&str] =
    &["plan", "objection", "question", "answer", "suggestion", "correction", "ack", "help"];

mod json;
mod safeguards;
mod schema;

pub use json::*;
pub use safeguards::*;
pub use schema::*;

// ---------------------------------------------------------------------------
// Reasons and limits
// ---------------------------------------------------------------------------

/// Why an envelope was refused: a closed set with stable lowercase names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    Size,
    Malformed,
    Schema,
    Signature,
    Source,
    Hops,
    Ttl,
    Skew,
    Duplicate,
    Rate,
    Closed,
    Participants,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::Size,
        Reason::Malformed,
        Reason::Schema,
        Reason::Signature,
        Reason::Source,
        Reason::Hops,
        Reason::Ttl,
        Reason::Skew,
        Reason::Duplicate,
        Reason::Rate,
        Reason::Closed,
        Reason::Participants,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Size => "size",
            Reason::Malformed => "malformed",
            Reason::Schema => "schema",
            Reason::Signature => "signature",
            Reason::Source => "source",
            Reason::Hops => "hops",
            Reason::Ttl => "ttl",
            Reason::Skew => "skew",
            Reason::Duplicate => "duplicate",
            Reason::Rate => "rate",
            Reason::Closed => "closed",
            Reason::Participants => "participants",
        }
    }
}

/// Every reason's string, in [`Reason::ALL`] order.
pub const REJECT_REASONS: [&str; 12] = [
    Reason::Size.as_str(),
    Reason::Malformed.as_str(),
    Reason::Schema.as_str(),
    Reason::Signature.as_str(),
    Reason::Source.as_str(),
    Reason::Hops.as_str(),
    Reason::Ttl.as_str(),
    Reason::Skew.as_str(),
    Reason::Duplicate.as_str(),
    Reason::Rate.as_str(),
    Reason::Closed.as_str(),
    Reason::Participants.as_str(),
];

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An envelope refused, with a message for humans.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Rejected {
    pub reason: Reason,
    pub message: String,
}

impl Rejected {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
}

fn reject<T>(reason: Reason, message: impl Into<String>) -> Result<T, Rejected> {
    Err(Rejected::new(reason, message))
}

/// What a receiver accepts. Every field is configurable; the defaults suit the
/// mesh as designed (help requests travel at most 3 hops).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest envelope in bytes, checked before parsing.
    pub max_size: usize,
    /// Largest `hop_count` accepted, and the most a relay forwards to.
    pub max_hops: u8,
    /// Largest `ttl` in seconds.
    pub max_ttl: u32,
    /// How far in the future `ts` may be, in milliseconds.
    pub max_clock_skew_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_size: 64 * 1024, max_hops: 3, max_ttl: 3600, max_clock_skew_ms: 30_000 }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis().min(u64::MAX as u128) as u64)
        .unwrap_or(0)
}

/// A fresh random message id: 16 random bytes as 32 lowercase hex digits.
pub fn new_msg_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

// ---------------------------------------------------------------------------
// The envelope
// ---------------------------------------------------------------------------

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
struct Parts {
    kind: MessageType,
    topic: String,
    node_id: String,
    from: [u8; PUBLIC_KEY_LEN],
    msg_id: String,
    seq: u64,
    ts: u64,
    ttl: u32,
    hop_count: u8,
    /// Always an object with sorted keys at every level.
    payload: Value,
}

impl Parts {
    /// `DOMAIN_TAG || canon(envelope without sig)` and where the sig goes.
    fn signed_bytes(&self, size_hint: usize) -> (Vec<u8>, usize) {
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

    fn into_envelope(self, signed: Vec<u8>, sig_at: usize, sig: [u8; SIGNATURE_LEN]) -> Envelope {
        Envelope { parts: self, sig, signed, sig_at }
    }
}

const ENVELOPE_KEYS: [&str; 12] =
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

fn expires_at_ms(ts: u64, ttl: u32) -> u64 {
    ts.saturating_add(u64::from(ttl) * 1000)
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

/// Decoded public keys of recent senders. Decompressing a key costs a tenth
/// of a verification, and a mesh hears the same few peers over and over.
/// Bounded: past `capacity` distinct senders it starts afresh.
pub struct KeyCache {
    keys: RwLock<HashMap<[u8; PUBLIC_KEY_LEN], Option<PublicKey>>>,
    capacity: usize,
}

impl KeyCache {
    pub fn new(capacity: usize) -> Self {
        Self { keys: RwLock::new(HashMap::new()), capacity: capacity.max(1) }
    }

    /// The key, or `None` if the bytes are not an ed25519 public key.
    pub fn get(&self, from: &[u8; PUBLIC_KEY_LEN]) -> Option<PublicKey> {
        // A panic elsewhere cannot leave a half-written map: inserts are whole.
        if let Some(known) = self.keys.read().unwrap_or_else(|p| p.into_inner()).get(from) {
            return known.clone();
        }
        let key = PublicKey::from_bytes(from).ok();
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= self.capacity {
            keys.clear();
        }
        keys.insert(*from, key.clone());
        key
    }

    pub fn len(&self) -> usize {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Distinct senders whose decoded keys a [`Gate`] keeps.
pub const KEY_CACHE_CAPACITY: usize = 4096;

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

    /// The gossipsub message id: [`message_id`] of [`Envelope::to_bytes`].
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

// ---------------------------------------------------------------------------
// The gate
// ---------------------------------------------------------------------------

/// The one check every inbound message passes: [`parse_and_verify`], then
/// dedup on `msg_id`, then the [`Safeguards`] if it has them.
pub struct Gate {
    pub limits: Limits,
    pub seen: SeenCache,
    pub keys: KeyCache,
    pub guards: Option<Guards>,
}

impl Gate {
    /// A gate remembering up to `capacity` message ids (at least 1).
    pub fn new(limits: Limits, capacity: usize) -> Self {
        // The default ttl is never used: every entry gets its message's own expiry.
        Self {
            limits,
            seen: SeenCache::new(capacity, f64::from(limits.max_ttl)),
            keys: KeyCache::new(KEY_CACHE_CAPACITY),
            guards: None,
        }
    }

    /// [`Gate::new`] that also enforces `safeguards` (steps 11 to 13).
    pub fn with_safeguards(limits: Limits, capacity: usize, safeguards: Safeguards) -> Result<Self, InvalidSafeguards> {
        Ok(Self { guards: Some(Guards::new(safeguards)?), ..Self::new(limits, capacity) })
    }

    pub fn admit(&mut self, bytes: &[u8], now_ms: u64) -> Result<Envelope, Rejected> {
        let envelope = parse_and_verify_cached(bytes, &self.limits, now_ms, &self.keys)?;
        self.record(&envelope, now_ms)?;
        Ok(envelope)
    }

    /// [`Gate::admit`] for a message the network says came from the peer
    /// `source` (a libp2p peer id in its binary form): refused as
    /// [`Reason::Source`] unless the envelope's signer is that peer.
    pub fn admit_from(&mut self, bytes: &[u8], source: &[u8], now_ms: u64) -> Result<Envelope, Rejected> {
        let envelope = parse_and_verify_cached(bytes, &self.limits, now_ms, &self.keys)?;
        check_source(&envelope, source)?;
        self.record(&envelope, now_ms)?;
        Ok(envelope)
    }

    /// [`Gate::admit`] for many, in order (a repeat within the batch is a
    /// duplicate, and each counts against its signer and discussion in turn).
    pub fn admit_batch(&mut self, items: &[&[u8]], now_ms: u64) -> Vec<Result<Envelope, Rejected>> {
        parse_and_verify_batch(items, &self.limits, now_ms, &self.keys)
            .into_iter()
            .map(|r| r.and_then(|env| self.record(&env, now_ms).map(|()| env)))
            .collect()
    }

    /// Steps 10 to 13, for an envelope that passed the others.
    fn record(&mut self, envelope: &Envelope, now_ms: u64) -> Result<(), Rejected> {
        record_seen(&mut self.seen, envelope, now_ms)?;
        match &mut self.guards {
            Some(guards) => guards.admit(envelope, now_ms),
            None => Ok(()),
        }
    }

    /// Forget every message id, signer and discussion.
    pub fn clear(&mut self) {
        self.seen.clear();
        if let Some(guards) = &mut self.guards {
            guards.clear();
        }
    }
}

/// Length of an ed25519 key's libp2p peer id: an identity multihash (code 0,
/// length 36) of the key's protobuf encoding (field 1 `Type` = 1 Ed25519,
/// field 2 `Data` = the 32 key bytes), as the libp2p peer-id spec inlines any
/// public key of at most 42 encoded bytes.
pub const PEER_ID_LEN: usize = 2 + 4 + PUBLIC_KEY_LEN;

/// The libp2p peer id (binary form) of an ed25519 public key.
pub fn peer_id(public_key: &[u8; PUBLIC_KEY_LEN]) -> [u8; PEER_ID_LEN] {
    let mut id = [0u8; PEER_ID_LEN];
    id[..6].copy_from_slice(&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
    id[6..].copy_from_slice(public_key);
    id
}

/// The source step of [`Gate::admit_from`].
pub fn check_source(envelope: &Envelope, source: &[u8]) -> Result<(), Rejected> {
    if peer_id(envelope.sender()).as_slice() == source {
        Ok(())
    } else {
        reject(Reason::Source, "the signer is not the peer the message came from")
    }
}

/// The dedup step of [`Gate::admit`], for an envelope that already verified
/// (never before: a forged message must not claim a `msg_id`). The entry lasts
/// as long as the message itself is valid, `ts + ttl * 1000`.
pub fn record_seen(seen: &mut SeenCache, envelope: &Envelope, now_ms: u64) -> Result<(), Rejected> {
    let now = now_ms as f64 / 1000.0;
    let expires = envelope.expires_at_ms() as f64 / 1000.0;
    if seen.check_and_insert_until(envelope.parts.msg_id.as_bytes(), expires, now) {
        Ok(())
    } else {
        reject(Reason::Duplicate, format!("msg_id {} was already admitted", envelope.parts.msg_id))
    }
}

#[cfg(test)]
mod tests;
