//! Why an envelope is refused: the closed set of reasons every check reports.

use std::fmt;

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

pub(super) fn reject<T>(reason: Reason, message: impl Into<String>) -> Result<T, Rejected> {
    Err(Rejected::new(reason, message))
}
