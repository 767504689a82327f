//! Bzzz core: the hot and security-critical paths, as plain Rust.
//!
//! * [`log`]: a Hypercore-compatible, single-writer, signed Merkle log with
//!   crash-safe storage, proofs and a verifier that needs only the public key.
//! * [`envelope`]: the signed envelope every gossip message travels in.
//! * [`dedup`]: the bounded, expiring "seen" cache.
//!
//! Nothing here knows about Python; `rust/python` is the only glue.

pub mod crypto;
pub mod dedup;
pub mod envelope;
pub mod flat_tree;
pub mod log;
