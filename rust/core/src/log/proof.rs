//! Proofs of one entry against a signed tree, in Hypercore's own shape: the
//! `block` part climbs from the entry's leaf to the full root that holds it,
//! the `upgrade` part carries the other full roots and the signature of the
//! tree of `length` entries (an upgrade from 0). A reader that knows only the
//! public key can check a proof, and so can a JS hypercore reader (see
//! tests/interop).

use serde::{Deserialize, Serialize};

use super::signer::{Mode, Signer};
use super::tree::{Node, Roots};
use super::LogError;
use crate::crypto::{self, Hash, PUBLIC_KEY_LEN};
use crate::flat_tree;

/// Longest log a proof may speak of (2^56 entries): keeps every flat-tree
/// index and byte count a peer sends well inside u64.
pub const MAX_LENGTH: u64 = 1 << 56;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    pub fork: u64,
    pub index: u64,
    pub value: Vec<u8>,
    /// Siblings from the leaf upwards, up to (not including) its full root.
    pub nodes: Vec<Node>,
    /// The signed length the proof upgrades to.
    pub length: u64,
    /// The full roots of `length` other than the one holding the entry.
    pub roots: Vec<Node>,
    /// In the form Hypercore sends it (multisig-wrapped in manifest mode).
    pub signature: Vec<u8>,
    /// Manifest mode: the public key its default manifest names, so a reader
    /// that knows only the log key can check it. `None` in compat mode.
    pub manifest: Option<[u8; PUBLIC_KEY_LEN]>,
}

/// What a valid proof establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub tree_hash: Hash,
    pub length: u64,
    pub byte_length: u64,
    pub fork: u64,
}

fn fail(msg: impl Into<String>) -> LogError {
    LogError::Verification(msg.into())
}

/// A writer's signed tree as a peer reports it: the full roots of `length`
/// entries and the signature over them. Checked once (`verify`), it proves
/// any number of entries by their Merkle paths alone: a replica checks a
/// whole answer against one signature, not one signature an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTree {
    pub fork: u64,
    pub length: u64,
    /// Every full root of `length`, in order.
    pub roots: Vec<Node>,
    /// In the form Hypercore sends it (multisig-wrapped in manifest mode).
    pub signature: Vec<u8>,
    /// As in `Proof`: the public key the default manifest names, or `None` in compat mode.
    pub manifest: Option<[u8; PUBLIC_KEY_LEN]>,
}

/// A `SignedTree` whose signature checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTree {
    roots: Vec<Node>,
    verified: Verified,
}

impl SignedTree {
    /// Check the roots and the signature with nothing but the writer's public key (in `signer`).
    pub fn verify(self, signer: &Signer) -> Result<VerifiedTree, LogError> {
        check_bounds(signer, self.manifest, self.length)?;
        let expected = flat_tree::full_roots(self.length);
        if let Some((root, index)) = self.roots.iter().zip(&expected).find(|(root, index)| root.index != **index) {
            return Err(fail(format!("expected root {index}, got node {}", root.index)));
        }
        if self.roots.len() != expected.len() {
            return Err(fail(format!(
                "a tree of {} entries has {} full roots, not {}",
                self.length,
                expected.len(),
                self.roots.len()
            )));
        }
        let tree =
            Roots::from_nodes(self.roots.clone()).ok_or_else(|| fail("roots do not form a tree of a possible size"))?;
        let tree_hash = tree.tree_hash();
        if !signer.verify_encoded(&tree_hash, self.length, self.fork, &self.signature) {
            return Err(fail(format!("signature does not match the tree of length {}", self.length)));
        }
        let verified = Verified { tree_hash, length: self.length, byte_length: tree.byte_length(), fork: self.fork };
        Ok(VerifiedTree { roots: self.roots, verified })
    }
}

impl VerifiedTree {
    pub fn verified(&self) -> &Verified {
        &self.verified
    }

    /// Entry `index` holds `value` in this tree, as `nodes` (its siblings up to its root) show.
    pub fn prove(&self, index: u64, value: &[u8], nodes: &[Node]) -> Result<(), LogError> {
        if index >= self.verified.length {
            return Err(fail(format!("entry {index} is not below the tree's length {}", self.verified.length)));
        }
        let top = climb(index, value, nodes)?;
        match self.roots.iter().find(|root| root.index == top.index) {
            Some(root) if *root == top => Ok(()),
            Some(_) => Err(fail(format!("entry {index} and its nodes do not hash to the signed root {}", top.index))),
            None => Err(fail("the proof's nodes do not form the tree of its length")),
        }
    }
}

/// The proof's mode must be the signer's, and its length one a log can hold:
/// everything after is flat-tree arithmetic on numbers a peer chose, and it
/// must not overflow.
fn check_bounds(signer: &Signer, manifest: Option<[u8; PUBLIC_KEY_LEN]>, length: u64) -> Result<(), LogError> {
    match (signer.mode(), manifest) {
        (Mode::Manifest, Some(key)) if key != signer.public_key() => {
            return Err(fail("the proof's manifest names another writer"))
        }
        (Mode::Compat, Some(_)) => return Err(fail("a manifest-mode proof for a compat-mode log")),
        _ => {}
    }
    if length > MAX_LENGTH {
        return Err(fail(format!("length {length} is beyond what a log can hold")));
    }
    Ok(())
}

/// The node at the top of entry `index`'s path: its leaf hashed up through `nodes`.
/// `index` must be below `MAX_LENGTH`.
fn climb(index: u64, value: &[u8], nodes: &[Node]) -> Result<Node, LogError> {
    let mut top = Node::leaf(index, value);
    for sibling in nodes {
        if sibling.index != flat_tree::sibling(top.index) {
            return Err(fail(format!("node {} is not the sibling of node {}", sibling.index, top.index)));
        }
        if top.size.checked_add(sibling.size).is_none() || flat_tree::depth(top.index) >= 60 {
            return Err(fail(format!("node {} is impossibly large", sibling.index)));
        }
        top = Node::parent_of(&top, sibling);
    }
    Ok(top)
}

impl Proof {
    /// Check the proof with nothing but the writer's public key (in `signer`).
    pub fn verify(&self, signer: &Signer) -> Result<Verified, LogError> {
        check_bounds(signer, self.manifest, self.length)?;
        if self.index >= self.length {
            return Err(fail(format!("entry {} is not below the proof's length {}", self.index, self.length)));
        }
        let top = climb(self.index, &self.value, &self.nodes)?;
        // The proof carries the other roots; the entry's own is the top of its path.
        let mut others = self.roots.iter();
        let mut roots = Vec::new();
        for index in flat_tree::full_roots(self.length) {
            if index == top.index {
                roots.push(top);
            } else {
                match others.next() {
                    Some(root) if root.index == index => roots.push(*root),
                    Some(root) => return Err(fail(format!("expected root {index}, got node {}", root.index))),
                    None => return Err(fail(format!("root {index} is missing"))),
                }
            }
        }
        if others.next().is_some() || !roots.iter().any(|r| r.index == top.index) {
            return Err(fail("the proof's nodes do not form the tree of its length"));
        }
        let tree = SignedTree {
            fork: self.fork,
            length: self.length,
            roots,
            signature: self.signature.clone(),
            manifest: self.manifest,
        };
        Ok(tree.verify(signer)?.verified)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&JsonProof::from(self)).expect("a proof always serializes")
    }

    pub fn from_json(text: &str) -> Result<Self, LogError> {
        let json: JsonProof = serde_json::from_str(text).map_err(|e| LogError::Invalid(format!("not a proof: {e}")))?;
        json.try_into()
    }
}

// The JSON form mirrors the proof object of hypercore's lib/merkle-tree.js,
// with byte strings as lowercase hex, so the JS side reads it as it is.

#[derive(Serialize, Deserialize)]
struct JsonNode {
    index: u64,
    size: u64,
    hash: String,
}

#[derive(Serialize, Deserialize)]
struct JsonBlock {
    index: u64,
    value: String,
    nodes: Vec<JsonNode>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonUpgrade {
    start: u64,
    length: u64,
    nodes: Vec<JsonNode>,
    additional_nodes: Vec<JsonNode>,
    signature: String,
}

#[derive(Serialize, Deserialize, PartialEq)]
struct JsonSigner {
    signature: String,
    namespace: String,
    #[serde(rename = "publicKey")]
    public_key: String,
}

/// Hypercore's manifest object; only the default single-signer v1 manifest is
/// accepted (see `crypto::default_manifest`).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonManifest {
    version: u64,
    hash: String,
    allow_patch: bool,
    quorum: u64,
    signers: Vec<JsonSigner>,
    prologue: Option<serde_json::Value>,
    linked: Option<serde_json::Value>,
    user_data: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct JsonProof {
    fork: u64,
    block: JsonBlock,
    hash: Option<serde_json::Value>,
    seek: Option<serde_json::Value>,
    upgrade: JsonUpgrade,
    #[serde(default)]
    manifest: Option<JsonManifest>,
}

impl JsonManifest {
    fn default_for(public_key: &[u8; PUBLIC_KEY_LEN]) -> Self {
        Self {
            version: 1,
            hash: "blake2b".into(),
            allow_patch: false,
            quorum: 1,
            signers: vec![JsonSigner {
                signature: "ed25519".into(),
                namespace: hex::encode(crypto::default_signer_namespace()),
                public_key: hex::encode(public_key),
            }],
            prologue: None,
            linked: None,
            user_data: None,
        }
    }

    fn public_key(&self) -> Result<[u8; PUBLIC_KEY_LEN], LogError> {
        let unsupported =
            || LogError::Invalid("only Hypercore's default single-signer v1 manifest is supported".into());
        let [signer] = self.signers.as_slice() else { return Err(unsupported()) };
        let key: [u8; PUBLIC_KEY_LEN] = hex::decode(&signer.public_key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| LogError::Invalid("manifest public key must be 32 bytes of hex".into()))?;
        let expected = Self::default_for(&key);
        let same = self.version == expected.version
            && self.hash == expected.hash
            && self.allow_patch == expected.allow_patch
            && self.quorum == expected.quorum
            && *signer == expected.signers[0]
            && self.prologue.is_none()
            && self.linked.is_none()
            && self.user_data.is_none();
        if same {
            Ok(key)
        } else {
            Err(unsupported())
        }
    }
}

impl From<&Node> for JsonNode {
    fn from(n: &Node) -> Self {
        Self { index: n.index, size: n.size, hash: hex::encode(n.hash) }
    }
}

impl TryFrom<&JsonNode> for Node {
    type Error = LogError;
    fn try_from(n: &JsonNode) -> Result<Self, LogError> {
        let bytes =
            hex::decode(&n.hash).map_err(|e| LogError::Invalid(format!("node {}: bad hash hex: {e}", n.index)))?;
        let hash: Hash =
            bytes.try_into().map_err(|_| LogError::Invalid(format!("node {}: hash must be 32 bytes", n.index)))?;
        Ok(Node { index: n.index, size: n.size, hash })
    }
}

impl From<&Proof> for JsonProof {
    fn from(p: &Proof) -> Self {
        Self {
            fork: p.fork,
            block: JsonBlock {
                index: p.index,
                value: hex::encode(&p.value),
                nodes: p.nodes.iter().map(JsonNode::from).collect(),
            },
            hash: None,
            seek: None,
            upgrade: JsonUpgrade {
                start: 0,
                length: p.length,
                nodes: p.roots.iter().map(JsonNode::from).collect(),
                additional_nodes: Vec::new(),
                signature: hex::encode(&p.signature),
            },
            manifest: p.manifest.as_ref().map(JsonManifest::default_for),
        }
    }
}

impl TryFrom<JsonProof> for Proof {
    type Error = LogError;
    fn try_from(j: JsonProof) -> Result<Self, LogError> {
        if j.upgrade.start != 0 || !j.upgrade.additional_nodes.is_empty() {
            return Err(LogError::Invalid("only proofs that upgrade from length 0 are supported".into()));
        }
        let hex_field =
            |what: &str, s: &str| hex::decode(s).map_err(|e| LogError::Invalid(format!("{what}: bad hex: {e}")));
        Ok(Proof {
            fork: j.fork,
            index: j.block.index,
            value: hex_field("value", &j.block.value)?,
            nodes: j.block.nodes.iter().map(Node::try_from).collect::<Result<_, _>>()?,
            length: j.upgrade.length,
            roots: j.upgrade.nodes.iter().map(Node::try_from).collect::<Result<_, _>>()?,
            signature: hex_field("signature", &j.upgrade.signature)?,
            manifest: j.manifest.as_ref().map(JsonManifest::public_key).transpose()?,
        })
    }
}
