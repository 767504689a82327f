//! The gate: every check in order, with what dedup and the safeguards
//! remember, shareable by threads.

use std::sync::{Mutex, MutexGuard};

use super::{
    parse_and_verify_batch, parse_and_verify_cached, reject, DiscussionState, Envelope, Guards, InvalidSafeguards,
    KeyCache, Limits, Reason, Rejected, Safeguards,
};
use crate::crypto::PUBLIC_KEY_LEN;
use crate::dedup::SeenCache;

/// Distinct senders whose decoded keys a [`Gate`] keeps.
pub const KEY_CACHE_CAPACITY: usize = 4096;

/// The one check every inbound message passes: [`parse_and_verify`], then
/// dedup on `msg_id`, then the [`Safeguards`] if it has them.
///
/// One gate serves many threads. Parsing and signature checks (steps 1 to 9),
/// the expensive part, take no lock and run in parallel; steps 10 to 13 take
/// the gate's one lock, briefly.
///
/// [`parse_and_verify`]: super::parse_and_verify
pub struct Gate {
    limits: Limits,
    keys: KeyCache,
    record: Mutex<Record>,
}

// The glue shares one gate between threads: this stops compiling if a field
// ever makes that unsound.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Gate>();
};

/// What steps 10 to 13 remember. One lock for both, so that concurrent
/// admissions pass dedup and the safeguards in the same order.
struct Record {
    seen: SeenCache,
    guards: Option<Guards>,
}

impl Record {
    /// Steps 10 to 13, for an envelope that passed the others.
    fn admit(&mut self, envelope: &Envelope, now_ms: u64) -> Result<(), Rejected> {
        record_seen(&mut self.seen, envelope, now_ms)?;
        match &mut self.guards {
            Some(guards) => guards.admit(envelope, now_ms),
            None => Ok(()),
        }
    }
}

impl Gate {
    /// A gate remembering up to `capacity` message ids (at least 1).
    pub fn new(limits: Limits, capacity: usize) -> Self {
        // The default ttl is never used: every entry gets its message's own expiry.
        let seen = SeenCache::new(capacity, f64::from(limits.max_ttl));
        Self { limits, keys: KeyCache::new(KEY_CACHE_CAPACITY), record: Mutex::new(Record { seen, guards: None }) }
    }

    /// [`Gate::new`] that also enforces `safeguards` (steps 11 to 13).
    pub fn with_safeguards(limits: Limits, capacity: usize, safeguards: Safeguards) -> Result<Self, InvalidSafeguards> {
        let gate = Self::new(limits, capacity);
        gate.lock().guards = Some(Guards::new(safeguards)?);
        Ok(gate)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn safeguards(&self) -> Option<Safeguards> {
        self.lock().guards.as_ref().map(|guards| *guards.safeguards())
    }

    /// Most message ids remembered.
    pub fn capacity(&self) -> usize {
        self.lock().seen.capacity()
    }

    /// Message ids remembered.
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A discussion's state at `now_ms`, or `None` if the gate has no
    /// safeguards or does not remember the discussion.
    pub fn discussion(&self, key: &str, now_ms: u64) -> Option<DiscussionState> {
        self.lock().guards.as_ref().and_then(|guards| guards.discussion(key, now_ms))
    }

    pub fn admit(&self, bytes: &[u8], now_ms: u64) -> Result<Envelope, Rejected> {
        let envelope = parse_and_verify_cached(bytes, &self.limits, now_ms, &self.keys)?;
        self.lock().admit(&envelope, now_ms)?;
        Ok(envelope)
    }

    /// [`Gate::admit`] for a message the network says came from the peer
    /// `source` (a libp2p peer id in its binary form): refused as
    /// [`Reason::Source`] unless the envelope's signer is that peer.
    pub fn admit_from(&self, bytes: &[u8], source: &[u8], now_ms: u64) -> Result<Envelope, Rejected> {
        let envelope = parse_and_verify_cached(bytes, &self.limits, now_ms, &self.keys)?;
        check_source(&envelope, source)?;
        self.lock().admit(&envelope, now_ms)?;
        Ok(envelope)
    }

    /// [`Gate::admit`] for many, in order (a repeat within the batch is a
    /// duplicate, and each counts against its signer and discussion in turn).
    /// The signatures are verified together before the lock is taken once.
    pub fn admit_batch(&self, items: &[&[u8]], now_ms: u64) -> Vec<Result<Envelope, Rejected>> {
        let verified = parse_and_verify_batch(items, &self.limits, now_ms, &self.keys);
        let mut record = self.lock();
        verified.into_iter().map(|r| r.and_then(|env| record.admit(&env, now_ms).map(|()| env))).collect()
    }

    /// Forget every message id, signer and discussion.
    pub fn clear(&self) {
        let mut record = self.lock();
        record.seen.clear();
        if let Some(guards) = &mut record.guards {
            guards.clear();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Record> {
        // Nothing under the lock can panic half-way through an update that
        // matters, so a poisoned lock still holds a consistent value.
        self.record.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
impl Gate {
    pub(super) fn keys(&self) -> &KeyCache {
        &self.keys
    }

    /// Signers and discussions the safeguards remember.
    pub(super) fn remembered(&self) -> (usize, usize) {
        self.lock().guards.as_ref().map_or((0, 0), |guards| (guards.signers(), guards.discussions()))
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
fn check_source(envelope: &Envelope, source: &[u8]) -> Result<(), Rejected> {
    if peer_id(envelope.sender()).as_slice() == source {
        Ok(())
    } else {
        reject(Reason::Source, "the signer is not the peer the message came from")
    }
}

/// The dedup step, for an envelope that already verified (never before: a
/// forged message must not claim a `msg_id`). The entry lasts as long as the
/// message itself is valid, `ts + ttl * 1000`.
fn record_seen(seen: &mut SeenCache, envelope: &Envelope, now_ms: u64) -> Result<(), Rejected> {
    let now = now_ms as f64 / 1000.0;
    let expires = envelope.expires_at_ms() as f64 / 1000.0;
    if seen.check_and_insert_until(envelope.msg_id().as_bytes(), expires, now) {
        Ok(())
    } else {
        reject(Reason::Duplicate, format!("msg_id {} was already admitted", envelope.msg_id()))
    }
}
