//! Discussion safeguards: steps 11 to 13 of the checks (see the module docs).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{reject, Envelope, MessageType, Reason, Rejected, Value};
use crate::crypto::PUBLIC_KEY_LEN;

/// What a [`Gate`](super::Gate) allows one signer and one discussion. Every field is
/// configurable; [`Safeguards::check`] says which values make sense.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Safeguards {
    /// Sustained messages per second per signer (the refill of its bucket).
    pub sender_rate: f64,
    /// Most messages a signer may send at once (its bucket's size).
    pub sender_burst: u32,
    /// Most distinct signers in one discussion.
    pub max_participants: u32,
    /// Seconds a discussion stays open after it opened.
    pub discussion_ttl: u32,
    /// Most messages admitted into one discussion.
    pub max_discussion_messages: u32,
    /// Most signers, and most discussions, remembered (each).
    pub capacity: usize,
}

impl Default for Safeguards {
    fn default() -> Self {
        Self {
            sender_rate: 5.0,
            sender_burst: 20,
            max_participants: 16,
            discussion_ttl: 3600,
            max_discussion_messages: 500,
            capacity: 10_000,
        }
    }
}

/// A [`Safeguards`] value that makes no sense (a zero, or a rate that is not a
/// positive number).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSafeguards(pub String);

impl Safeguards {
    /// `Ok` if every field is usable: a finite `sender_rate` above 0, every
    /// other field at least 1.
    pub fn check(&self) -> Result<(), InvalidSafeguards> {
        if !(self.sender_rate.is_finite() && self.sender_rate > 0.0) {
            return Err(InvalidSafeguards(format!(
                "sender_rate must be a finite number above 0, got {}",
                self.sender_rate
            )));
        }
        let at_least_one = [
            ("sender_burst", self.sender_burst as usize),
            ("max_participants", self.max_participants as usize),
            ("discussion_ttl", self.discussion_ttl as usize),
            ("max_discussion_messages", self.max_discussion_messages as usize),
            ("capacity", self.capacity),
        ];
        match at_least_one.into_iter().find(|&(_, value)| value == 0) {
            Some((name, _)) => Err(InvalidSafeguards(format!("{name} must be at least 1"))),
            None => Ok(()),
        }
    }
}

impl Envelope {
    /// The discussion this message belongs to, for the safeguards: a
    /// `meta_msg`'s topic (one issue), `"help:" + request_id` for a help
    /// request and its responses; `None` for `capabilities` and `escalation`.
    pub fn discussion_key(&self) -> Option<String> {
        match self.message_type() {
            MessageType::MetaMsg => Some(self.topic().to_owned()),
            MessageType::TaskHelpRequest | MessageType::TaskHelpResponse => {
                // Always present: the schema requires it of both types.
                self.payload().get("request_id").and_then(Value::as_str).map(|id| format!("help:{id}"))
            }
            MessageType::Capabilities | MessageType::Escalation => None,
        }
    }
}

/// Tokens are counted in billionths, so that refills add up exactly (ten
/// refills of a tenth make a token, as they would not in floating point).
const NANOS: u64 = 1_000_000_000;

/// One signer's token bucket.
struct Bucket {
    nanotokens: u64,
    refilled_ms: u64,
    /// Its key in [`Guards::refills`].
    generation: u64,
}

struct Discussion {
    opened_ms: u64,
    closes_ms: u64,
    messages: u32,
    participants: BTreeSet<[u8; PUBLIC_KEY_LEN]>,
}

/// A discussion as the guards see it at some `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscussionState {
    /// `min(ts, now)` of its first admitted message.
    pub opened_ms: u64,
    /// `opened_ms + discussion_ttl * 1000`: open up to and including this.
    pub closes_ms: u64,
    /// Messages admitted into it.
    pub messages: u32,
    /// Distinct signers of those messages.
    pub participants: usize,
    /// Whether a message would be refused as [`Reason::Closed`].
    pub closed: bool,
}

/// The state behind steps 11 to 13: each signer's bucket and each
/// discussion's count and participants, at most `capacity` of each.
///
/// Eviction is O(log n): besides the maps, an ordered index of signers by last
/// refill and one of discussions by deadline say at once who goes first.
pub struct Guards {
    safeguards: Safeguards,
    buckets: HashMap<[u8; PUBLIC_KEY_LEN], Bucket>,
    /// `(refilled_ms, generation)` of every bucket: the first is evicted.
    refills: BTreeMap<(u64, u64), [u8; PUBLIC_KEY_LEN]>,
    discussions: HashMap<String, Discussion>,
    /// `(closes_ms, generation)` of every discussion: the first is evicted.
    deadlines: BTreeMap<(u64, u64), String>,
    /// Orders entries of equal times: the one touched earlier goes first.
    generation: u64,
}

impl Guards {
    pub fn new(safeguards: Safeguards) -> Result<Self, InvalidSafeguards> {
        safeguards.check()?;
        Ok(Self {
            safeguards,
            buckets: HashMap::new(),
            refills: BTreeMap::new(),
            discussions: HashMap::new(),
            deadlines: BTreeMap::new(),
            generation: 0,
        })
    }

    pub fn safeguards(&self) -> &Safeguards {
        &self.safeguards
    }

    /// Steps 11 to 13 for an envelope that passed steps 1 to 10; if it passes
    /// them too, it is recorded in its discussion.
    pub fn admit(&mut self, envelope: &Envelope, now_ms: u64) -> Result<(), Rejected> {
        if envelope.message_type() == MessageType::Capabilities {
            return Ok(());
        }
        let from = envelope.sender();
        self.take_token(from, now_ms)?;
        let Some(key) = envelope.discussion_key() else { return Ok(()) };
        let safeguards = self.safeguards;
        if let Some(discussion) = self.discussions.get_mut(&key) {
            if now_ms > discussion.closes_ms {
                return reject(Reason::Closed, format!("discussion {key} closed at {}", discussion.closes_ms));
            }
            if discussion.messages >= safeguards.max_discussion_messages {
                return reject(
                    Reason::Closed,
                    format!("discussion {key} is closed: it holds its {} messages", discussion.messages),
                );
            }
            let new_participant = !discussion.participants.contains(from);
            if new_participant && discussion.participants.len() >= safeguards.max_participants as usize {
                return reject(
                    Reason::Participants,
                    format!("discussion {key} already has its {} participants", discussion.participants.len()),
                );
            }
            discussion.messages += 1;
            discussion.participants.insert(*from);
            return Ok(());
        }
        self.open(key, envelope, now_ms);
        Ok(())
    }

    /// Step 11: refill the signer's bucket, then take a token if it holds one.
    fn take_token(&mut self, from: &[u8; PUBLIC_KEY_LEN], now_ms: u64) -> Result<(), Rejected> {
        let burst = u64::from(self.safeguards.sender_burst) * NANOS;
        if !self.buckets.contains_key(from) && self.buckets.len() >= self.safeguards.capacity {
            // The signer refilled longest ago is the likeliest to be full, and a
            // full bucket is what a new signer gets: forgetting it costs nothing.
            if let Some((_, evicted)) = self.refills.pop_first() {
                self.buckets.remove(&evicted);
            }
        }
        let bucket = match self.buckets.entry(*from) {
            Entry::Occupied(entry) => {
                let bucket = entry.into_mut();
                self.refills.remove(&(bucket.refilled_ms, bucket.generation));
                bucket
            }
            Entry::Vacant(entry) => entry.insert(Bucket { nanotokens: burst, refilled_ms: now_ms, generation: 0 }),
        };
        self.generation += 1;
        // A clock that goes back refills nothing, and never moves the refill back.
        let elapsed_ms = now_ms.saturating_sub(bucket.refilled_ms);
        // `as` saturates: a refill too large for u64 is a full bucket anyway.
        let refill = (self.safeguards.sender_rate * elapsed_ms as f64 * 1e6).round() as u64;
        bucket.nanotokens = bucket.nanotokens.saturating_add(refill).min(burst);
        bucket.refilled_ms = bucket.refilled_ms.max(now_ms);
        bucket.generation = self.generation;
        self.refills.insert((bucket.refilled_ms, bucket.generation), *from);
        if bucket.nanotokens < NANOS {
            return reject(
                Reason::Rate,
                format!(
                    "the signer is over its rate of {} messages per second (burst {})",
                    self.safeguards.sender_rate, self.safeguards.sender_burst
                ),
            );
        }
        bucket.nanotokens -= NANOS;
        Ok(())
    }

    /// Open `key`'s discussion with `envelope` as its first message.
    fn open(&mut self, key: String, envelope: &Envelope, now_ms: u64) {
        if self.discussions.len() >= self.safeguards.capacity {
            // The earliest deadline: closed discussions go first, then the one
            // that would close soonest.
            if let Some((_, evicted)) = self.deadlines.pop_first() {
                self.discussions.remove(&evicted);
            }
        }
        // Not `ts` alone: a message from the (allowed) future must not keep a
        // discussion open longer; not `now` alone: a late first message must
        // not either.
        let opened_ms = envelope.ts_ms().min(now_ms);
        let closes_ms = opened_ms.saturating_add(u64::from(self.safeguards.discussion_ttl) * 1000);
        self.generation += 1;
        self.deadlines.insert((closes_ms, self.generation), key.clone());
        let participants = BTreeSet::from([*envelope.sender()]);
        self.discussions.insert(key, Discussion { opened_ms, closes_ms, messages: 1, participants });
    }

    /// `key`'s discussion as of `now_ms`, or `None` if none is remembered.
    pub fn discussion(&self, key: &str, now_ms: u64) -> Option<DiscussionState> {
        self.discussions.get(key).map(|d| DiscussionState {
            opened_ms: d.opened_ms,
            closes_ms: d.closes_ms,
            messages: d.messages,
            participants: d.participants.len(),
            closed: now_ms > d.closes_ms || d.messages >= self.safeguards.max_discussion_messages,
        })
    }

    /// Signers remembered (at most `capacity`).
    pub fn signers(&self) -> usize {
        self.buckets.len()
    }

    /// Discussions remembered (at most `capacity`).
    pub fn discussions(&self) -> usize {
        self.discussions.len()
    }

    pub fn clear(&mut self) {
        self.buckets.clear();
        self.refills.clear();
        self.discussions.clear();
        self.deadlines.clear();
    }
}
