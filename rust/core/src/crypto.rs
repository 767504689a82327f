//! Hashing and signing exactly as Hypercore does (holepunchto/hypercore-crypto
//! and hypercore `lib/caps.js`).
//!
//! Every integer in a hash input is a compact-encoding `uint64`: 8 bytes,
//! little-endian. The one-byte type prefixes (leaf 0, parent 1, root 2) keep
//! a leaf from ever being passed off as a parent (second-preimage attack).

use blake2b_simd::Params;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

pub const HASH_LEN: usize = 32;
pub const PUBLIC_KEY_LEN: usize = 32;
pub const SECRET_KEY_LEN: usize = 64;
pub const SEED_LEN: usize = 32;
pub const SIGNATURE_LEN: usize = 64;

pub type Hash = [u8; HASH_LEN];

const LEAF_TYPE: u8 = 0;
const PARENT_TYPE: u8 = 1;
const ROOT_TYPE: u8 = 2;

fn blake2b_256() -> blake2b_simd::State {
    Params::new().hash_length(HASH_LEN).to_state()
}

fn finish(state: &blake2b_simd::State) -> Hash {
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(state.finalize().as_bytes());
    out
}

/// Plain BLAKE2b-256 of the concatenation of `parts` (libsodium `crypto_generichash_batch`).
pub fn hash(parts: &[&[u8]]) -> Hash {
    let mut state = blake2b_256();
    for part in parts {
        state.update(part);
    }
    finish(&state)
}

/// Hash of one entry: `BLAKE2b-256(0x00 || u64le(len) || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut state = blake2b_256();
    state.update(&[LEAF_TYPE]);
    state.update(&(data.len() as u64).to_le_bytes());
    state.update(data);
    finish(&state)
}

/// Hash of an inner node from its left and right children:
/// `BLAKE2b-256(0x01 || u64le(left.size + right.size) || left.hash || right.hash)`.
pub fn parent_hash(left_hash: &Hash, right_hash: &Hash, size: u64) -> Hash {
    let mut state = blake2b_256();
    state.update(&[PARENT_TYPE]);
    state.update(&size.to_le_bytes());
    state.update(left_hash);
    state.update(right_hash);
    finish(&state)
}

/// The "tree hash" over the current full roots, left to right:
/// `BLAKE2b-256(0x02 || (hash || u64le(index) || u64le(size))*)`.
pub fn tree_hash<'a>(roots: impl IntoIterator<Item = (&'a Hash, u64, u64)>) -> Hash {
    let mut state = blake2b_256();
    state.update(&[ROOT_TYPE]);
    for (hash, index, size) in roots {
        state.update(hash);
        state.update(&index.to_le_bytes());
        state.update(&size.to_le_bytes());
    }
    finish(&state)
}

/// Discovery key: BLAKE2b-256 of the bytes `hypercore`, keyed with the log's key,
/// so peers can find each other without revealing the key itself.
pub fn discovery_key(key: &[u8; PUBLIC_KEY_LEN]) -> Hash {
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(Params::new().hash_length(HASH_LEN).key(key).hash(b"hypercore").as_bytes());
    out
}

/// `hypercore-crypto` `namespace(name, count)`: `ns = H(name)`, then `H(ns || i)`.
pub fn namespace(name: &[u8], index: u8) -> Hash {
    let ns = hash(&[name]);
    hash(&[&ns, &[index]])
}

/// The 32-byte tag Hypercore puts in front of what it signs (`caps.TREE`).
pub fn tree_namespace() -> Hash {
    namespace(b"hypercore", 0)
}

/// `caps.MANIFEST`: prefixed to a manifest's encoding to hash it into a key.
pub fn manifest_namespace() -> Hash {
    namespace(b"hypercore", 3)
}

/// `caps.DEFAULT_NAMESPACE`: the namespace of a default signer.
pub fn default_signer_namespace() -> Hash {
    namespace(b"hypercore", 4)
}

pub const MANIFEST_LEN: usize = 70;

/// Hypercore 11's default manifest for one ed25519 signer
/// (`Verifier.defaultSignerManifest`), compact-encoded as lib/messages.js does:
/// version 1, flags 0, hash blake2b (0), quorum 1, one signer: ed25519 (0),
/// namespace, public key. Every field but the key is fixed, so the manifest,
/// and the log key it hashes to, follow from the public key alone.
pub fn default_manifest(public_key: &[u8; PUBLIC_KEY_LEN]) -> [u8; MANIFEST_LEN] {
    let mut out = [0u8; MANIFEST_LEN];
    out[..6].copy_from_slice(&[1, 0, 0, 1, 1, 0]);
    out[6..38].copy_from_slice(&default_signer_namespace());
    out[38..].copy_from_slice(public_key);
    out
}

/// The key of a manifest-mode log: `BLAKE2b-256(MANIFEST || encoded manifest)`.
pub fn manifest_hash(manifest: &[u8]) -> Hash {
    hash(&[&manifest_namespace(), manifest])
}

/// What a manifest-mode (Hypercore 11 default) core signs (`caps.treeSignable`):
/// `TREE || manifest_hash || tree_hash || u64le(length) || u64le(fork)`.
pub fn tree_signable(manifest_hash: &Hash, tree_hash: &Hash, length: u64, fork: u64) -> [u8; 112] {
    let mut out = [0u8; 112];
    out[..32].copy_from_slice(&tree_namespace());
    out[32..64].copy_from_slice(manifest_hash);
    out[64..96].copy_from_slice(tree_hash);
    out[96..104].copy_from_slice(&length.to_le_bytes());
    out[104..112].copy_from_slice(&fork.to_le_bytes());
    out
}

/// What a compat-mode core signs (`caps.treeSignableCompat`, with header):
/// `TREE || tree_hash || u64le(length) || u64le(fork)`.
///
/// Compat mode (`compat: true`) makes the log's key the signer's public key.
pub fn tree_signable_compat(tree_hash: &Hash, length: u64, fork: u64) -> [u8; 80] {
    let mut out = [0u8; 80];
    out[..32].copy_from_slice(&tree_namespace());
    out[32..64].copy_from_slice(tree_hash);
    out[64..72].copy_from_slice(&length.to_le_bytes());
    out[72..80].copy_from_slice(&fork.to_le_bytes());
    out
}

pub const MULTISIG_LEN: usize = 68;

/// A single signer's signature as a manifest-mode core stores and sends it
/// (`multisig.assemble`): proofs `[ {signer 0, signature, patch 0} ]`, no patch
/// nodes, in compact-encoding: `01 00 sig[64] 00 00`.
pub fn encode_multisig(signature: &[u8; SIGNATURE_LEN]) -> [u8; MULTISIG_LEN] {
    let mut out = [0u8; MULTISIG_LEN];
    out[0] = 1;
    out[2..66].copy_from_slice(signature);
    out
}

/// The inverse of [`encode_multisig`]; `None` for anything but that one shape.
pub fn decode_multisig(stored: &[u8]) -> Option<[u8; SIGNATURE_LEN]> {
    if stored.len() != MULTISIG_LEN || stored[..2] != [1, 0] || stored[66..] != [0, 0] {
        return None;
    }
    stored[2..66].try_into().ok()
}

/// An ed25519 key pair in libsodium's layout: the secret key is `seed || public key`.
#[derive(Clone)]
pub struct KeyPair {
    signing: SigningKey,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("{what} must be {expected} bytes, got {got}")]
    Length { what: &'static str, expected: usize, got: usize },
    #[error("secret key does not match its public key")]
    Mismatch,
    #[error("public key is not a valid ed25519 point")]
    BadPublicKey,
}

impl KeyPair {
    pub fn generate() -> Self {
        Self { signing: SigningKey::generate(&mut rand::rngs::OsRng) }
    }

    pub fn from_seed(seed: &[u8]) -> Result<Self, KeyError> {
        let seed: [u8; SEED_LEN] =
            seed.try_into().map_err(|_| KeyError::Length { what: "seed", expected: SEED_LEN, got: seed.len() })?;
        Ok(Self { signing: SigningKey::from_bytes(&seed) })
    }

    /// From a 64-byte libsodium secret key (`seed || public key`); the embedded
    /// public key must match the seed, as libsodium would otherwise sign garbage.
    pub fn from_secret_key(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() != SECRET_KEY_LEN {
            return Err(KeyError::Length { what: "secret key", expected: SECRET_KEY_LEN, got: secret.len() });
        }
        let pair = Self::from_seed(&secret[..SEED_LEN])?;
        if pair.public_key() != secret[SEED_LEN..] {
            return Err(KeyError::Mismatch);
        }
        Ok(pair)
    }

    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.signing.verifying_key().to_bytes()
    }

    pub fn secret_key(&self) -> [u8; SECRET_KEY_LEN] {
        self.signing.to_keypair_bytes()
    }

    pub fn seed(&self) -> [u8; SEED_LEN] {
        self.signing.to_bytes()
    }

    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }
}

/// A public key, parsed once so that verifying many signatures does not
/// decompress the point each time.
#[derive(Clone, Debug)]
pub struct PublicKey {
    key: VerifyingKey,
    /// Fit for batch verification: not of small order and free of torsion, so
    /// the cofactored batch equation cannot be satisfied by anyone but its holder.
    batchable: bool,
}

impl PublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| KeyError::Length {
            what: "public key",
            expected: PUBLIC_KEY_LEN,
            got: bytes.len(),
        })?;
        let key = VerifyingKey::from_bytes(&arr).map_err(|_| KeyError::BadPublicKey)?;
        let batchable = !key.is_weak() && key.to_edwards().is_torsion_free();
        Ok(Self { key, batchable })
    }

    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.key.to_bytes()
    }

    /// Strict verification (rejects non-canonical and small-order signatures),
    /// matching libsodium's `crypto_sign_verify_detached`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = <[u8; SIGNATURE_LEN]>::try_from(signature) else { return false };
        self.key.verify_strict(message, &Signature::from_bytes(&sig)).is_ok()
    }
}

/// Check many signatures at once (ed25519-dalek batch verification: one
/// multiscalar multiplication, about half the work per signature of checking
/// them one by one). `true` only if every one is valid.
///
/// The batch equation is cofactored, so it accepts one thing [`PublicKey::verify`]
/// refuses: a valid signature whose `R` had a small-order point added (a
/// different encoding of a signature the key's holder made; not a forgery).
/// Keys that are not [`PublicKey`]`::batchable` make it return `false`, and
/// callers then check one by one.
pub fn verify_batch(messages: &[&[u8]], signatures: &[[u8; SIGNATURE_LEN]], keys: &[&PublicKey]) -> bool {
    if messages.len() != signatures.len() || messages.len() != keys.len() || keys.iter().any(|k| !k.batchable) {
        return false;
    }
    let signatures: Vec<Signature> = signatures.iter().map(Signature::from_bytes).collect();
    let keys: Vec<VerifyingKey> = keys.iter().map(|k| k.key).collect();
    ed25519_dalek::verify_batch(messages, &signatures, &keys).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_hash_covers_type_length_and_data() {
        let mut manual = Vec::new();
        manual.push(0u8);
        manual.extend_from_slice(&5u64.to_le_bytes());
        manual.extend_from_slice(b"hello");
        assert_eq!(leaf_hash(b"hello"), hash(&[&manual]));
        assert_ne!(leaf_hash(b"hello"), leaf_hash(b"hellp"));
    }

    #[test]
    fn secret_key_round_trips_in_libsodium_layout() {
        let pair = KeyPair::from_seed(&[7u8; 32]).unwrap();
        let sk = pair.secret_key();
        assert_eq!(&sk[..32], &[7u8; 32]);
        assert_eq!(&sk[32..], &pair.public_key());
        assert!(KeyPair::from_secret_key(&sk).is_ok());
        let mut bad = sk;
        bad[40] ^= 1;
        assert_eq!(KeyPair::from_secret_key(&bad).err(), Some(KeyError::Mismatch));
    }

    #[test]
    fn signatures_verify_only_for_their_message_and_key() {
        let pair = KeyPair::from_seed(&[1u8; 32]).unwrap();
        let pk = PublicKey::from_bytes(&pair.public_key()).unwrap();
        let sig = pair.sign(b"abc");
        assert!(pk.verify(b"abc", &sig));
        assert!(!pk.verify(b"abd", &sig));
        assert!(!pk.verify(b"abc", &sig[..63]));
        let other = PublicKey::from_bytes(&KeyPair::from_seed(&[2u8; 32]).unwrap().public_key()).unwrap();
        assert!(!other.verify(b"abc", &sig));
    }

    #[test]
    fn a_batch_verifies_only_if_every_signature_does() {
        let pairs: Vec<KeyPair> = (0..5u8).map(|i| KeyPair::from_seed(&[i + 1; 32]).unwrap()).collect();
        let keys: Vec<PublicKey> = pairs.iter().map(|p| PublicKey::from_bytes(&p.public_key()).unwrap()).collect();
        let messages: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<[u8; 64]> = pairs.iter().zip(&messages).map(|(p, m)| p.sign(m)).collect();
        let msgs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
        let key_refs: Vec<&PublicKey> = keys.iter().collect();
        assert!(verify_batch(&msgs, &sigs, &key_refs));
        sigs[3][5] ^= 1;
        assert!(!verify_batch(&msgs, &sigs, &key_refs));
        assert!(!verify_batch(&msgs[..4], &sigs, &key_refs));
    }

    #[test]
    fn wrong_lengths_are_errors_not_panics() {
        assert!(matches!(KeyPair::from_seed(&[0u8; 31]), Err(KeyError::Length { .. })));
        assert!(matches!(PublicKey::from_bytes(&[0u8; 33]), Err(KeyError::Length { .. })));
    }
}
