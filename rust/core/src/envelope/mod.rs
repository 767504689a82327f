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

/// The JSON value types payloads are made of (re-exported so users need not
/// depend on serde_json themselves).
pub use serde_json::{Map, Value};

// One concern each, in the order a received message meets them: the refusal
// reasons, what a receiver accepts, strict and canonical JSON, the message
// types' schemas, the envelope and its wire form, the checks of received
// bytes, the decoded-key cache, the safeguards, and the gate over them all.
mod gate;
mod json;
mod keys;
mod limits;
mod reason;
mod safeguards;
mod schema;
mod verify;
mod wire;

pub use gate::*;
pub use json::*;
pub use keys::*;
pub use limits::*;
pub use reason::*;
pub use safeguards::*;
pub use schema::*;
pub use verify::*;
pub use wire::*;

#[cfg(test)]
mod tests;
