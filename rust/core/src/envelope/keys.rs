//! The decoded-key cache the checks share.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::crypto::{PublicKey, PUBLIC_KEY_LEN};

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
