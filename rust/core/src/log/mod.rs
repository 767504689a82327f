//! A Hypercore-compatible, single-writer, signed Merkle log.
//!
//! Hashes and signatures are byte-for-byte those of Hypercore 11 in its default
//! (compat) mode, where the log's key is the writer's ed25519 public key; the
//! storage format is Bzzz's own (see [`storage`]). A writer signs once per
//! append call, so `append_batch` amortizes one signature over many entries.
//!
//! A log is opened in one of three roles: the writer (with its key pair: it
//! signs), a reader (no key: read-only), or a replica ([`Log::create_replica`],
//! [`Log::open_replica`]): someone else's log copied from peers, which holds no
//! secret key and grows only by [`Log::append_verified`], entries whose new tree
//! the writer's signature covers. The signature is checked before anything is
//! written, so a bad peer can never corrupt a replica.

pub mod proof;
pub mod signer;
mod storage;
pub mod tree;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::crypto::{self, Hash, KeyError, KeyPair, PublicKey, MANIFEST_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::flat_tree;
pub use proof::{Proof, SignedTree, Verified, VerifiedTree};
pub use signer::{Mode, Signer};
use storage::{Files, Header, Record, NODE_LEN, RECORD_LEN};
pub use tree::{Node, Roots};

/// Past this many signature records the file is compacted down to the newest one.
const COMPACT_RECORDS_AT: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("log at {path} is corrupted: {reason}")]
    Corrupted { path: PathBuf, reason: String },
    #[error("verification failed: {0}")]
    Verification(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, LogError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Each append reaches the OS before it returns: nothing is lost if the
    /// process dies. A power cut may lose the newest appends, which opening the
    /// log then cuts back cleanly. (What Hypercore's RocksDB storage does.)
    Process,
    /// Each append is fsynced before it returns: power cuts lose nothing acknowledged.
    Power,
}

/// What an open log may do.
// One per open log: the size is of no account, and the key pair stays inline.
#[allow(clippy::large_enum_variant)]
enum Role {
    /// Opened without a key pair: it only reads.
    Reader,
    /// Opened with its key pair: it signs its own appends.
    Writer(KeyPair),
    /// A copy of someone else's log: it grows only by entries the writer signed.
    Replica,
}

/// Where the signature of an append comes from.
enum Signature<'a> {
    /// Made here, with the writer's key pair.
    Own(&'a KeyPair),
    /// Sent by a peer, in the form Hypercore stores it: checked before anything is written.
    Peer(&'a [u8]),
}

pub struct Log {
    dir: PathBuf,
    files: Files,
    signer: Signer,
    role: Role,
    roots: Roots,
    latest: Option<Record>,
    records: u64,
    durability: Durability,
    recovery: Option<String>,
}

impl Log {
    /// Create a new, empty log in `dir` (which must not already hold one).
    pub fn create(dir: &Path, key_pair: KeyPair, mode: Mode, durability: Durability) -> Result<Self> {
        storage::create(dir, &Header { public_key: key_pair.public_key(), compat: mode == Mode::Compat })?;
        Self::open(dir, Some(key_pair), durability)
    }

    /// Open an existing log: with the key pair to append, without it to read.
    /// A torn tail left by a crash is cut back to the newest intact signed
    /// state (see [`Log::recovery`]); damage anywhere else is `Corrupted`.
    pub fn open(dir: &Path, key_pair: Option<KeyPair>, durability: Durability) -> Result<Self> {
        Self::open_as(dir, key_pair.map_or(Role::Reader, Role::Writer), durability)
    }

    /// Create a new, empty replica of the log whose writer holds `public_key`
    /// (in `mode`, as the writer's log is), in `dir`, which must not already hold a log.
    pub fn create_replica(
        dir: &Path,
        public_key: [u8; PUBLIC_KEY_LEN],
        mode: Mode,
        durability: Durability,
    ) -> Result<Self> {
        PublicKey::from_bytes(&public_key)?;
        storage::create(dir, &Header { public_key, compat: mode == Mode::Compat })?;
        Self::open_replica(dir, durability)
    }

    /// Open an existing log (a replica, or a writer's log without its key
    /// pair) to grow it with [`Log::append_verified`]. It takes the writer's
    /// lock, so two replicators never write at once, and cuts a torn tail back
    /// as [`Log::open`] does.
    pub fn open_replica(dir: &Path, durability: Durability) -> Result<Self> {
        Self::open_as(dir, Role::Replica, durability)
    }

    fn open_as(dir: &Path, role: Role, durability: Durability) -> Result<Self> {
        let corrupted = |reason: String| LogError::Corrupted { path: dir.to_path_buf(), reason };
        let header_bytes = std::fs::read(dir.join("header")).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                io::Error::new(io::ErrorKind::NotFound, format!("no log at {}", dir.display())).into()
            }
            _ => LogError::Io(e),
        })?;
        let header = Header::decode(&header_bytes).map_err(corrupted)?;
        let public_key = PublicKey::from_bytes(&header.public_key).map_err(|e| corrupted(e.to_string()))?;
        if let Role::Writer(pair) = &role {
            if pair.public_key() != header.public_key {
                return Err(LogError::Invalid(format!(
                    "the key pair does not match the log at {} (its writer's public key is {})",
                    dir.display(),
                    hex::encode(header.public_key)
                )));
            }
        }
        let signer = Signer::new(public_key, if header.compat { Mode::Compat } else { Mode::Manifest });
        let files = Files::open(dir, !matches!(role, Role::Reader))?;
        let mut log = Self {
            dir: dir.to_path_buf(),
            files,
            signer,
            role,
            roots: Roots::default(),
            latest: None,
            records: 0,
            durability,
            recovery: None,
        };
        log.recover()?;
        Ok(log)
    }

    fn corrupted(&self, reason: impl Into<String>) -> LogError {
        LogError::Corrupted { path: self.dir.clone(), reason: reason.into() }
    }

    /// Find the newest record whose tree is really on disk and signed, and cut
    /// everything after it.
    fn recover(&mut self) -> Result<()> {
        let sig_len = self.files.signatures.metadata()?.len();
        let data_len = self.files.data.metadata()?.len();
        let tree_len = self.files.tree.metadata()?.len();
        let full = sig_len / RECORD_LEN;
        let mut chosen: Option<(u64, Record, Roots)> = None;
        let mut skipped = Vec::new();
        for slot in (0..full).rev() {
            let mut buf = [0u8; RECORD_LEN as usize];
            self.files.signatures.read_exact_at(&mut buf, slot * RECORD_LEN)?;
            match Record::decode(&buf)
                .ok_or("checksum mismatch".to_string())
                .and_then(|r| self.check_record(&r, data_len, tree_len).map(|roots| (r, roots)))
            {
                Ok((record, roots)) => {
                    chosen = Some((slot, record, roots));
                    break;
                }
                Err(why) => skipped.push(format!("record {slot}: {why}")),
            }
        }
        if chosen.is_none() && full > 0 {
            return Err(self.corrupted(format!("no intact signed state ({})", skipped.join("; "))));
        }
        let (records, roots, latest) = match chosen {
            Some((slot, record, roots)) => (slot + 1, roots, Some(record)),
            None => (0, Roots::default(), None),
        };
        let want_tree = tree_file_len(roots.length());
        let torn = records * RECORD_LEN != sig_len || data_len != roots.byte_length() || tree_len != want_tree;
        if torn {
            let mut what = format!(
                "cut back to the last signed length {} ({} data bytes); removed {} bytes of data, {} of tree, {} of signatures",
                roots.length(),
                roots.byte_length(),
                data_len.saturating_sub(roots.byte_length()),
                tree_len.saturating_sub(want_tree),
                sig_len - records * RECORD_LEN
            );
            if !skipped.is_empty() {
                what.push_str(&format!(" [{}]", skipped.join("; ")));
            }
            if self.writable() {
                self.files.signatures.set_len(records * RECORD_LEN)?;
                self.files.data.set_len(roots.byte_length())?;
                self.files.tree.set_len(want_tree)?;
                // A torn append may have completed parents inside the kept range
                // that are not complete at the kept length: they must read as empty.
                for index in incomplete_nodes(roots.length()) {
                    self.files.tree.write_all_at(&[0u8; NODE_LEN as usize], index * NODE_LEN)?;
                }
                for f in [&self.files.signatures, &self.files.data, &self.files.tree] {
                    f.sync_all()?;
                }
            } else {
                what.push_str(" (in memory only: opened read-only)");
            }
            self.recovery = Some(what);
        }
        self.roots = roots;
        self.latest = latest;
        self.records = records;
        Ok(())
    }

    /// Does the record describe a tree that is on disk and signed by our key?
    fn check_record(&self, record: &Record, data_len: u64, tree_len: u64) -> std::result::Result<Roots, String> {
        if record.length == 0 {
            return Err("length 0".into());
        }
        if tree_len < tree_file_len(record.length) || data_len < record.byte_length {
            return Err(format!("length {} is past the end of the stored data", record.length));
        }
        let nodes = flat_tree::full_roots(record.length)
            .into_iter()
            .map(|i| self.files.read_node(i))
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| e.to_string())?;
        let roots = Roots::from_nodes(nodes).ok_or("stored roots do not form a tree")?;
        if roots.byte_length() != record.byte_length || roots.tree_hash() != record.tree_hash {
            return Err(format!("stored tree does not match the signed tree of length {}", record.length));
        }
        if !self.signer.verify(&record.tree_hash, record.length, record.fork, &record.signature) {
            return Err(format!("bad signature at length {}", record.length));
        }
        self.check_last_entry(&roots).map_err(|e| format!("at length {}: {e}", record.length))?;
        Ok(roots)
    }

    /// The newest entry is where a crash leaves its mark (a power cut can leave
    /// a signed tail that never reached the disk): re-hash it and climb to its
    /// root, so a damaged tail is cut off on open rather than found by `verify`.
    fn check_last_entry(&self, roots: &Roots) -> std::result::Result<(), String> {
        let last = roots.length() - 1;
        let leaf = self.files.read_node(2 * last).map_err(|e| e.to_string())?;
        let offset = roots.byte_length().checked_sub(leaf.size).ok_or("last entry is larger than the log")?;
        let mut value = vec![0u8; leaf.size as usize];
        self.files.data.read_exact_at(&mut value, offset).map_err(|e| e.to_string())?;
        let mut top = Node::leaf(last, &value);
        if top != leaf {
            return Err("the last entry does not match its leaf hash".into());
        }
        let holder = roots.nodes().last().expect("a non-empty tree has roots");
        while top.index != holder.index {
            let sibling = self.files.read_node(flat_tree::sibling(top.index)).map_err(|e| e.to_string())?;
            top = Node::parent_of(&top, &sibling);
        }
        if top != *holder {
            return Err("the last entry does not hash up to its root".into());
        }
        Ok(())
    }

    pub fn append(&mut self, entry: &[u8]) -> Result<u64> {
        self.append_batch(&[entry])
    }

    /// Append entries under one signature; returns the new length. Nothing is
    /// visible (or survives a crash) until the signature record is written.
    pub fn append_batch<T: AsRef<[u8]>>(&mut self, entries: &[T]) -> Result<u64> {
        self.append_signed(entries, None)
    }

    /// Append entries a peer sent, with the writer's `signature` (in the form
    /// Hypercore stores it, as [`Log::signature`] returns it) of the tree they
    /// make; returns the new length. For a replica only. The signature is
    /// checked before anything is written: if it is not the writer's, the
    /// result is `Verification` and the log is left exactly as it was. Empty
    /// `entries` check a signature of the current length and write nothing.
    pub fn append_verified<T: AsRef<[u8]>>(&mut self, entries: &[T], signature: &[u8]) -> Result<u64> {
        self.append_signed(entries, Some(signature))
    }

    /// The one append: `peer_signature` is `None` for a writer signing its own
    /// entries, the signature a peer sent for a replica.
    fn append_signed<T: AsRef<[u8]>>(&mut self, entries: &[T], peer_signature: Option<&[u8]>) -> Result<u64> {
        let signature = match (&self.role, peer_signature) {
            (Role::Writer(key_pair), None) => Signature::Own(key_pair),
            (Role::Replica, Some(signature)) => Signature::Peer(signature),
            (Role::Reader, _) => {
                return Err(LogError::Invalid("log was opened without its key pair: it is read-only".into()))
            }
            (Role::Replica, None) => {
                return Err(LogError::Invalid(
                    "a replica has no key pair to sign with: it grows only by verified appends".into(),
                ))
            }
            (Role::Writer(_), Some(_)) => {
                return Err(LogError::Invalid(
                    "verified appends are for replicas: this log was opened with its key pair and signs its own".into(),
                ))
            }
        };
        let old_length = self.roots.length();
        let fork = self.fork();
        if entries.is_empty() {
            if let Signature::Peer(signature) = signature {
                self.check_peer_signature(signature, &self.roots.tree_hash(), old_length, fork)?;
            }
            return Ok(old_length);
        }
        let old_bytes = self.roots.byte_length();
        let mut roots = self.roots.clone();
        let mut created = Vec::with_capacity(entries.len() * 2);
        for (k, entry) in entries.iter().enumerate() {
            roots.push_leaf(Node::leaf(old_length + k as u64, entry.as_ref()), &mut created);
        }
        let tree_hash = roots.tree_hash();
        let signature = match signature {
            Signature::Own(key_pair) => self.signer.sign(key_pair, &tree_hash, roots.length(), fork),
            Signature::Peer(signature) => self.check_peer_signature(signature, &tree_hash, roots.length(), fork)?,
        };
        let record = Record { length: roots.length(), byte_length: roots.byte_length(), fork, tree_hash, signature };
        // Nothing has been written yet: only a signed tree reaches the disk.

        if let [only] = entries {
            self.files.data.write_all_at(only.as_ref(), old_bytes)?;
        } else {
            let mut data = Vec::with_capacity((roots.byte_length() - old_bytes) as usize);
            for entry in entries {
                data.extend_from_slice(entry.as_ref());
            }
            self.files.data.write_all_at(&data, old_bytes)?;
        }

        // New nodes at or past the old head form one contiguous region; the
        // few parents that close older subtrees are written one by one.
        let lo = 2 * old_length;
        let hi = 2 * roots.length() - 1;
        let mut region = vec![0u8; ((hi - lo) * NODE_LEN) as usize];
        for node in &created {
            if node.index >= lo {
                let at = ((node.index - lo) * NODE_LEN) as usize;
                storage::encode_node(node, &mut region[at..at + NODE_LEN as usize]);
            } else {
                let mut buf = [0u8; NODE_LEN as usize];
                storage::encode_node(node, &mut buf);
                self.files.tree.write_all_at(&buf, node.index * NODE_LEN)?;
            }
        }
        self.files.tree.write_all_at(&region, lo * NODE_LEN)?;

        if self.durability == Durability::Power {
            self.files.data.sync_data()?;
            self.files.tree.sync_data()?;
        }
        self.files.signatures.write_all_at(&record.encode(), self.records * RECORD_LEN)?;
        if self.durability == Durability::Power {
            self.files.signatures.sync_data()?;
        }
        self.records += 1;
        self.roots = roots;
        self.latest = Some(record);
        if self.records >= COMPACT_RECORDS_AT {
            self.compact_signatures()?;
        }
        Ok(self.roots.length())
    }

    /// The raw signature inside `encoded` if it is the writer's over the tree.
    fn check_peer_signature(
        &self,
        encoded: &[u8],
        tree_hash: &Hash,
        length: u64,
        fork: u64,
    ) -> Result<[u8; SIGNATURE_LEN]> {
        let raw = self.signer.decode(encoded).ok_or_else(|| {
            LogError::Verification(format!(
                "a {} byte signature is not in the form a {} log stores",
                encoded.len(),
                match self.signer.mode() {
                    Mode::Manifest => "manifest-mode",
                    Mode::Compat => "compat-mode",
                }
            ))
        })?;
        if !self.signer.verify(tree_hash, length, fork, &raw) {
            return Err(LogError::Verification(format!(
                "the signature is not the writer's over the tree of length {length} (fork {fork})"
            )));
        }
        Ok(raw)
    }

    /// Keep only the newest record. The data it covers is fsynced first, so the
    /// one record left always describes a durable tree.
    fn compact_signatures(&mut self) -> Result<()> {
        let Some(latest) = &self.latest else { return Ok(()) };
        self.files.data.sync_data()?;
        self.files.tree.sync_data()?;
        let tmp = self.dir.join("signatures.tmp");
        std::fs::write(&tmp, latest.encode())?;
        File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, self.dir.join("signatures"))?;
        File::open(&self.dir)?.sync_all()?;
        self.files.signatures = std::fs::OpenOptions::new().read(true).write(true).open(self.dir.join("signatures"))?;
        self.records = 1;
        Ok(())
    }

    fn check_index(&self, index: u64) -> Result<()> {
        if index >= self.roots.length() {
            return Err(LogError::Invalid(format!(
                "entry {index} is out of range: the log has {} entries",
                self.roots.length()
            )));
        }
        Ok(())
    }

    fn read_node(&self, index: u64) -> Result<Node> {
        self.files.read_node(index).map_err(|e| self.corrupted(format!("cannot read tree node {index}: {e}")))
    }

    pub fn get(&self, index: u64) -> Result<Vec<u8>> {
        self.check_index(index)?;
        let mut offset = 0;
        for root in flat_tree::full_roots(index) {
            offset += self.read_node(root)?.size;
        }
        let size = self.read_node(2 * index)?.size;
        if offset.checked_add(size).is_none_or(|end| end > self.roots.byte_length()) {
            return Err(self.corrupted(format!("entry {index} claims bytes past the end of the log")));
        }
        let mut value = vec![0u8; size as usize];
        self.files
            .data
            .read_exact_at(&mut value, offset)
            .map_err(|e| self.corrupted(format!("cannot read entry {index}: {e}")))?;
        Ok(value)
    }

    pub fn proof(&self, index: u64) -> Result<Proof> {
        self.check_index(index)?;
        let latest = self.latest.as_ref().expect("a non-empty log has a signature");
        let roots = self.roots.nodes();
        let holder =
            roots.iter().find(|r| flat_tree::contains(r.index, 2 * index)).expect("some root holds every entry");
        let mut nodes = Vec::new();
        let mut at = 2 * index;
        while at != holder.index {
            nodes.push(self.read_node(flat_tree::sibling(at))?);
            at = flat_tree::parent(at);
        }
        Ok(Proof {
            fork: latest.fork,
            index,
            value: self.get(index)?,
            nodes,
            length: self.roots.length(),
            roots: roots.iter().filter(|r| r.index != holder.index).copied().collect(),
            signature: self.signer.encode(&latest.signature),
            manifest: self.signer.manifest().map(|_| self.signer.public_key()),
        })
    }

    /// Re-hash every entry and node from disk and check every stored signature.
    /// Anything stored that does not check out is an error: nothing is trusted.
    pub fn verify(&self) -> Result<()> {
        let length = self.roots.length();
        let mut tree = Vec::new();
        File::open(self.dir.join("tree"))?.read_to_end(&mut tree)?;
        if tree.len() as u64 != tree_file_len(length) {
            return Err(self.corrupted(format!(
                "tree file is {} bytes, expected {}",
                tree.len(),
                tree_file_len(length)
            )));
        }
        let data_file = File::open(self.dir.join("data"))?;
        if data_file.metadata()?.len() != self.roots.byte_length() {
            return Err(self.corrupted("data file length does not match the signed byte length"));
        }
        let mut sigs = Vec::new();
        File::open(self.dir.join("signatures"))?.read_to_end(&mut sigs)?;
        if sigs.len() as u64 != self.records * RECORD_LEN {
            return Err(self.corrupted("signatures file has a partial record"));
        }
        let mut records = Vec::new();
        for (slot, chunk) in sigs.chunks(RECORD_LEN as usize).enumerate() {
            let record = Record::decode(chunk)
                .ok_or_else(|| self.corrupted(format!("signature record {slot} fails its checksum")))?;
            if records.last().is_some_and(|prev: &Record| prev.length >= record.length) || record.length > length {
                return Err(self.corrupted(format!("signature record {slot} is out of order")));
            }
            records.push(record);
        }
        if records.last() != self.latest.as_ref() {
            return Err(self.corrupted("the newest signature record changed on disk"));
        }
        let stored = |index: u64| {
            storage::decode_node(index, &tree[(index * NODE_LEN) as usize..((index + 1) * NODE_LEN) as usize])
        };

        let mut reader = BufReader::with_capacity(1 << 20, data_file);
        let mut roots = Roots::default();
        let mut created = Vec::new();
        let mut value = Vec::new();
        let mut next_record = records.iter().skip_while(|r| r.length == 0).peekable();
        for entry in 0..length {
            let size = stored(2 * entry).size;
            if size > self.roots.byte_length() {
                return Err(self.corrupted(format!("entry {entry} has an impossible size")));
            }
            value.resize(size as usize, 0);
            reader.read_exact(&mut value).map_err(|e| self.corrupted(format!("entry {entry}: {e}")))?;
            created.clear();
            roots.push_leaf(Node::leaf(entry, &value), &mut created);
            for node in &created {
                if stored(node.index) != *node {
                    return Err(
                        self.corrupted(format!("tree node {} does not match the data (entry {entry})", node.index))
                    );
                }
            }
            while let Some(record) = next_record.next_if(|r| r.length == roots.length()) {
                self.check_signed(record, &roots)?;
            }
        }
        if next_record.next().is_some() {
            return Err(self.corrupted("a signature record lies past the data"));
        }
        for index in incomplete_nodes(length) {
            if tree[(index * NODE_LEN) as usize..((index + 1) * NODE_LEN) as usize].iter().any(|b| *b != 0) {
                return Err(self.corrupted(format!("tree node {index} is not complete yet but holds data")));
            }
        }
        Ok(())
    }

    fn check_signed(&self, record: &Record, roots: &Roots) -> Result<()> {
        let tree_hash = roots.tree_hash();
        if record.tree_hash != tree_hash || record.byte_length != roots.byte_length() {
            return Err(self.corrupted(format!("signed tree hash at length {} does not match the data", record.length)));
        }
        if !self.signer.verify(&tree_hash, record.length, record.fork, &record.signature) {
            return Err(LogError::Verification(format!("signature at length {} is not the writer's", record.length)));
        }
        Ok(())
    }

    pub fn length(&self) -> u64 {
        self.roots.length()
    }

    pub fn byte_length(&self) -> u64 {
        self.roots.byte_length()
    }

    pub fn fork(&self) -> u64 {
        self.latest.as_ref().map_or(0, |r| r.fork)
    }

    /// The log's key: the manifest hash, or the writer's public key in compat mode.
    pub fn key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.signer.key()
    }

    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.signer.public_key()
    }

    pub fn mode(&self) -> Mode {
        self.signer.mode()
    }

    pub fn manifest(&self) -> Option<[u8; MANIFEST_LEN]> {
        self.signer.manifest()
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    pub fn discovery_key(&self) -> Hash {
        crypto::discovery_key(&self.key())
    }

    pub fn tree_hash(&self) -> Hash {
        self.roots.tree_hash()
    }

    /// The signature of the current length, in the form Hypercore stores it;
    /// `None` for an empty log.
    pub fn signature(&self) -> Option<Vec<u8>> {
        self.latest.as_ref().map(|r| self.signer.encode(&r.signature))
    }

    pub fn roots(&self) -> &[Node] {
        self.roots.nodes()
    }

    /// Can this log grow: opened with its key pair, or as a replica.
    pub fn writable(&self) -> bool {
        !matches!(self.role, Role::Reader)
    }

    /// Opened as a replica: grows by [`Log::append_verified`], never signs.
    pub fn is_replica(&self) -> bool {
        matches!(self.role, Role::Replica)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// What opening the log had to cut off after a crash, if anything.
    pub fn recovery(&self) -> Option<&str> {
        self.recovery.as_deref()
    }
}

fn tree_file_len(length: u64) -> u64 {
    if length == 0 {
        0
    } else {
        (2 * length - 1) * NODE_LEN
    }
}

/// Parents stored inside the tree file of `length` entries that are not yet
/// complete (their span runs past the last entry): the ancestors of the last
/// leaf whose index is below the head.
fn incomplete_nodes(length: u64) -> Vec<u64> {
    if length == 0 {
        return Vec::new();
    }
    let last = 2 * length - 2;
    let mut out = Vec::new();
    let mut at = last;
    for _ in 0..63 {
        at = flat_tree::parent(at);
        if at < last && flat_tree::right_span(at) > last {
            out.push(at);
        }
        if flat_tree::left_span(at) == 0 && at > last {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests;
