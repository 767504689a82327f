//! On-disk layout of one log, a directory of four files:
//!
//! ```text
//! header      "BZZZLOG\0" | u32 version | u32 flags | public key[32] | u32 crc32   (52 bytes)
//!             flags bit 0: compat mode (the key is the public key; no manifest)
//! data        the entries, back to back
//! tree        node i of the flat tree at byte 40*i: hash[32] | u64 size
//! signatures  one record per signed append:
//!             u64 length | u64 byte_length | u64 fork | tree_hash[32] | sig[64] | u32 crc32
//! lock        held (flock) by the one writer
//! ```
//!
//! All integers are little-endian. An append writes data, then tree nodes, and
//! only then its signature record, so the newest intact record always describes
//! a prefix that was fully written before it; whatever lies past it is a torn
//! tail, and opening the log cuts it off.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::tree::Node;
use crate::crypto::{Hash, PUBLIC_KEY_LEN, SIGNATURE_LEN};

pub const MAGIC: &[u8; 8] = b"BZZZLOG\0";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 52;
pub const NODE_LEN: u64 = 40;
pub const RECORD_LEN: u64 = 124;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub public_key: [u8; PUBLIC_KEY_LEN],
    pub compat: bool,
}

const FLAG_COMPAT: u32 = 1;

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let flags = if self.compat { FLAG_COMPAT } else { 0 };
        out[12..16].copy_from_slice(&flags.to_le_bytes());
        out[16..48].copy_from_slice(&self.public_key);
        let crc = crc32fast::hash(&out[..48]);
        out[48..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != HEADER_LEN {
            return Err(format!("header is {} bytes, expected {HEADER_LEN}", bytes.len()));
        }
        if &bytes[..8] != MAGIC {
            return Err("header does not start with the Bzzz log magic".into());
        }
        if crc32fast::hash(&bytes[..48]).to_le_bytes() != bytes[48..] {
            return Err("header checksum mismatch".into());
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        if version != VERSION {
            return Err(format!("unsupported log format version {version}"));
        }
        let flags = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
        if flags & !FLAG_COMPAT != 0 {
            return Err(format!("unknown header flags {flags:#x}"));
        }
        Ok(Self { public_key: bytes[16..48].try_into().unwrap(), compat: flags & FLAG_COMPAT != 0 })
    }
}

/// One signed state of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub length: u64,
    pub byte_length: u64,
    pub fork: u64,
    pub tree_hash: Hash,
    pub signature: [u8; SIGNATURE_LEN],
}

impl Record {
    pub fn encode(&self) -> [u8; RECORD_LEN as usize] {
        let mut out = [0u8; RECORD_LEN as usize];
        out[..8].copy_from_slice(&self.length.to_le_bytes());
        out[8..16].copy_from_slice(&self.byte_length.to_le_bytes());
        out[16..24].copy_from_slice(&self.fork.to_le_bytes());
        out[24..56].copy_from_slice(&self.tree_hash);
        out[56..120].copy_from_slice(&self.signature);
        let crc = crc32fast::hash(&out[..120]);
        out[120..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// `None` when the checksum fails: a torn or damaged record.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != RECORD_LEN as usize || crc32fast::hash(&bytes[..120]).to_le_bytes() != bytes[120..] {
            return None;
        }
        Some(Self {
            length: u64::from_le_bytes(bytes[..8].try_into().unwrap()),
            byte_length: u64::from_le_bytes(bytes[8..16].try_into().unwrap()),
            fork: u64::from_le_bytes(bytes[16..24].try_into().unwrap()),
            tree_hash: bytes[24..56].try_into().unwrap(),
            signature: bytes[56..120].try_into().unwrap(),
        })
    }
}

pub fn encode_node(node: &Node, out: &mut [u8]) {
    out[..32].copy_from_slice(&node.hash);
    out[32..40].copy_from_slice(&node.size.to_le_bytes());
}

pub fn decode_node(index: u64, bytes: &[u8]) -> Node {
    Node { index, hash: bytes[..32].try_into().unwrap(), size: u64::from_le_bytes(bytes[32..40].try_into().unwrap()) }
}

/// The open files of one log.
pub struct Files {
    pub data: File,
    pub tree: File,
    pub signatures: File,
    /// Held for the writer's lifetime; dropping it releases the lock.
    pub _lock: Option<File>,
}

impl Files {
    pub fn open(dir: &Path, writable: bool) -> io::Result<Self> {
        let open = |name: &str| OpenOptions::new().read(true).write(writable).open(dir.join(name));
        let lock = if writable {
            let lock = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(dir.join("lock"))?;
            match lock.try_lock() {
                Ok(()) => Some(lock),
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        format!("log at {} is open for writing by another process", dir.display()),
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        } else {
            None
        };
        Ok(Self { data: open("data")?, tree: open("tree")?, signatures: open("signatures")?, _lock: lock })
    }

    pub fn read_node(&self, index: u64) -> io::Result<Node> {
        let mut buf = [0u8; NODE_LEN as usize];
        self.tree.read_exact_at(&mut buf, index * NODE_LEN)?;
        Ok(decode_node(index, &buf))
    }
}

/// Create the files of a new, empty log; the header goes in last, through a
/// rename, so a half-created log is never taken for a real one.
pub fn create(dir: &Path, header: &Header) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if dir.join("header").exists() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("a log already exists at {}", dir.display())));
    }
    for name in ["data", "tree", "signatures"] {
        File::create(dir.join(name))?.sync_all()?;
    }
    let tmp = dir.join("header.tmp");
    std::fs::write(&tmp, header.encode())?;
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join("header"))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}
