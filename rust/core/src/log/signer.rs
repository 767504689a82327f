//! Who signs a log, and how: the two ways Hypercore 11 signs a single-writer core.
//!
//! * [`Mode::Manifest`], Hypercore 11's default: the log's key is the hash of a
//!   default manifest naming the writer's public key; the signature covers the
//!   manifest hash too, and is stored in the multisig wrapper (68 bytes).
//! * [`Mode::Compat`] (`compat: true`): the key is the public key itself and the
//!   raw 64-byte signature is stored.
//!
//! Either way the writer's public key alone is enough to verify: the default
//! manifest follows from it.

use crate::crypto::{self, Hash, KeyPair, PublicKey, MANIFEST_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Manifest,
    Compat,
}

#[derive(Clone, Debug)]
pub struct Signer {
    public_key: PublicKey,
    mode: Mode,
    manifest_hash: Hash,
}

impl Signer {
    pub fn new(public_key: PublicKey, mode: Mode) -> Self {
        let manifest_hash = crypto::manifest_hash(&crypto::default_manifest(&public_key.to_bytes()));
        Self { public_key, mode, manifest_hash }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.public_key.to_bytes()
    }

    /// The log's key, as peers name and discover it.
    pub fn key(&self) -> [u8; PUBLIC_KEY_LEN] {
        match self.mode {
            Mode::Manifest => self.manifest_hash,
            Mode::Compat => self.public_key(),
        }
    }

    /// The compact-encoded manifest; `None` in compat mode, which has none.
    pub fn manifest(&self) -> Option<[u8; MANIFEST_LEN]> {
        match self.mode {
            Mode::Manifest => Some(crypto::default_manifest(&self.public_key())),
            Mode::Compat => None,
        }
    }

    fn verify_raw(&self, tree_hash: &Hash, length: u64, fork: u64, raw: &[u8]) -> bool {
        match self.mode {
            Mode::Manifest => {
                self.public_key.verify(&crypto::tree_signable(&self.manifest_hash, tree_hash, length, fork), raw)
            }
            Mode::Compat => self.public_key.verify(&crypto::tree_signable_compat(tree_hash, length, fork), raw),
        }
    }

    /// Sign the tree; returns the raw ed25519 signature.
    pub fn sign(&self, key_pair: &KeyPair, tree_hash: &Hash, length: u64, fork: u64) -> [u8; SIGNATURE_LEN] {
        debug_assert_eq!(key_pair.public_key(), self.public_key());
        match self.mode {
            Mode::Manifest => key_pair.sign(&crypto::tree_signable(&self.manifest_hash, tree_hash, length, fork)),
            Mode::Compat => key_pair.sign(&crypto::tree_signable_compat(tree_hash, length, fork)),
        }
    }

    /// A raw signature in the form Hypercore stores and sends.
    pub fn encode(&self, raw: &[u8; SIGNATURE_LEN]) -> Vec<u8> {
        match self.mode {
            Mode::Manifest => crypto::encode_multisig(raw).to_vec(),
            Mode::Compat => raw.to_vec(),
        }
    }

    /// Check a raw signature (as Bzzz's storage keeps them).
    pub fn verify(&self, tree_hash: &Hash, length: u64, fork: u64, raw: &[u8]) -> bool {
        self.verify_raw(tree_hash, length, fork, raw)
    }

    /// The raw signature inside one in the form Hypercore stores and sends;
    /// `None` if it is not in this mode's form (a multisig of one signer, or 64 bytes).
    pub fn decode(&self, encoded: &[u8]) -> Option<[u8; SIGNATURE_LEN]> {
        match self.mode {
            Mode::Manifest => crypto::decode_multisig(encoded),
            Mode::Compat => encoded.try_into().ok(),
        }
    }

    /// Check a signature in the form Hypercore stores and sends.
    pub fn verify_encoded(&self, tree_hash: &Hash, length: u64, fork: u64, encoded: &[u8]) -> bool {
        self.decode(encoded).is_some_and(|raw| self.verify_raw(tree_hash, length, fork, &raw))
    }
}
