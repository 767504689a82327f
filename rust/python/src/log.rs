//! Glue for the Merkle log: `KeyPair`, `MerkleLog`, `Proof`, `LogVerifier`, `VerifiedTree`.
//!
//! Every `MerkleLog` method takes its lock with the GIL released, and does its
//! work before taking the GIL back: a thread blocked on the lock never holds
//! the GIL that the lock's holder needs, and hashing, signing and disk I/O run
//! alongside other Python threads.

use std::path::PathBuf;
use std::sync::Mutex;

use bzzz_core::crypto::{self, PublicKey};
use bzzz_core::log::{self, Durability, Log, LogError, Node};
use bzzz_core::log::{Mode, Signer};
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyType};

use crate::errors::{key_error, log_error, CoreError};

/// An ed25519 key pair; the secret key is libsodium's 64 bytes (seed || public key).
#[pyclass(frozen, module = "bzzz._core")]
#[derive(Clone)]
pub struct KeyPair {
    pub(crate) inner: crypto::KeyPair,
}

#[pymethods]
impl KeyPair {
    #[staticmethod]
    fn generate() -> Self {
        Self { inner: crypto::KeyPair::generate() }
    }

    #[staticmethod]
    fn from_seed(seed: &[u8]) -> PyResult<Self> {
        Ok(Self { inner: crypto::KeyPair::from_seed(seed).map_err(key_error)? })
    }

    #[staticmethod]
    fn from_secret_key(secret_key: &[u8]) -> PyResult<Self> {
        Ok(Self { inner: crypto::KeyPair::from_secret_key(secret_key).map_err(key_error)? })
    }

    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.public_key())
    }

    #[getter]
    fn secret_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.secret_key())
    }

    #[getter]
    fn seed<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.seed())
    }

    fn sign<'py>(&self, py: Python<'py>, message: &[u8]) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.sign(message))
    }

    fn __repr__(&self) -> String {
        // Never the secret key: reprs end up in logs.
        format!("KeyPair(public_key={})", hex::encode(self.inner.public_key()))
    }
}

type NodeTuple = (u64, u64, Vec<u8>);

fn node_tuple(n: &Node) -> NodeTuple {
    (n.index, n.size, n.hash.to_vec())
}

fn node_from_tuple((index, size, hash): NodeTuple) -> PyResult<Node> {
    let hash = hash
        .try_into()
        .map_err(|h: Vec<u8>| CoreError::new_err(format!("node {index}: hash must be 32 bytes, got {}", h.len())))?;
    Ok(Node { index, size, hash })
}

/// A proof of one entry against a signed tree, in Hypercore's proof shape.
#[pyclass(frozen, eq, module = "bzzz._core")]
#[derive(Clone, PartialEq)]
pub struct Proof {
    inner: log::Proof,
}

#[pymethods]
impl Proof {
    #[new]
    #[pyo3(signature = (*, index, value, nodes, length, roots, signature, fork = 0, manifest = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        index: u64,
        value: Vec<u8>,
        nodes: Vec<NodeTuple>,
        length: u64,
        roots: Vec<NodeTuple>,
        signature: Vec<u8>,
        fork: u64,
        manifest: Option<Vec<u8>>,
    ) -> PyResult<Self> {
        let manifest = manifest.map(|m| manifest_public_key(&m)).transpose()?;
        Ok(Self {
            inner: log::Proof {
                fork,
                index,
                value,
                nodes: nodes.into_iter().map(node_from_tuple).collect::<PyResult<_>>()?,
                length,
                roots: roots.into_iter().map(node_from_tuple).collect::<PyResult<_>>()?,
                signature,
                manifest,
            },
        })
    }

    #[getter]
    fn index(&self) -> u64 {
        self.inner.index
    }
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.value)
    }
    #[getter]
    fn nodes(&self) -> Vec<NodeTuple> {
        self.inner.nodes.iter().map(node_tuple).collect()
    }
    #[getter]
    fn length(&self) -> u64 {
        self.inner.length
    }
    #[getter]
    fn roots(&self) -> Vec<NodeTuple> {
        self.inner.roots.iter().map(node_tuple).collect()
    }
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.signature)
    }
    #[getter]
    fn fork(&self) -> u64 {
        self.inner.fork
    }
    /// The encoded default manifest (manifest mode), or None (compat mode).
    #[getter]
    fn manifest<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.manifest.map(|key| PyBytes::new(py, &crypto::default_manifest(&key)))
    }

    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        Ok(Self { inner: log::Proof::from_json(text).map_err(log_error)? })
    }

    fn __repr__(&self) -> String {
        format!("Proof(index={}, length={}, nodes={})", self.inner.index, self.inner.length, self.inner.nodes.len())
    }
}

/// The public key named by an encoded default manifest.
fn manifest_public_key(manifest: &[u8]) -> PyResult<[u8; crypto::PUBLIC_KEY_LEN]> {
    let key: [u8; crypto::PUBLIC_KEY_LEN] = manifest
        .get(manifest.len().saturating_sub(crypto::PUBLIC_KEY_LEN)..)
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| CoreError::new_err("not a manifest"))?;
    if manifest != crypto::default_manifest(&key) {
        return Err(CoreError::new_err("only Hypercore's default single-signer v1 manifest is supported"));
    }
    Ok(key)
}

fn mode(compat: bool) -> Mode {
    if compat {
        Mode::Compat
    } else {
        Mode::Manifest
    }
}

/// Checks proofs and signatures of one log with nothing but its writer's public key.
#[pyclass(frozen, module = "bzzz._core")]
pub struct LogVerifier {
    signer: Signer,
}

#[pymethods]
impl LogVerifier {
    #[new]
    #[pyo3(signature = (public_key, *, compat = false))]
    fn new(public_key: &[u8], compat: bool) -> PyResult<Self> {
        Ok(Self { signer: Signer::new(PublicKey::from_bytes(public_key).map_err(key_error)?, mode(compat)) })
    }

    /// The log key this verifier accepts proofs for.
    #[getter]
    fn key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.signer.key())
    }

    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.signer.public_key())
    }

    #[getter]
    fn compat(&self) -> bool {
        self.signer.mode() == Mode::Compat
    }

    fn verify_proof<'py>(&self, py: Python<'py>, proof: &Proof) -> PyResult<Bound<'py, PyBytes>> {
        proof.inner.verify(&self.signer).map_err(log_error)?;
        Ok(PyBytes::new(py, &proof.inner.value))
    }

    /// Check a signed tree once; the `VerifiedTree` then proves entries by hashing alone.
    #[pyo3(signature = (*, length, roots, signature, fork = 0, manifest = None))]
    fn verify_tree(
        &self,
        length: u64,
        roots: Vec<NodeTuple>,
        signature: Vec<u8>,
        fork: u64,
        manifest: Option<Vec<u8>>,
    ) -> PyResult<VerifiedTree> {
        let tree = log::SignedTree {
            fork,
            length,
            roots: roots.into_iter().map(node_from_tuple).collect::<PyResult<_>>()?,
            signature,
            manifest: manifest.map(|m| manifest_public_key(&m)).transpose()?,
        };
        Ok(VerifiedTree { inner: tree.verify(&self.signer).map_err(log_error)? })
    }

    #[pyo3(signature = (tree_hash, length, signature, fork = 0))]
    fn verify_signature(&self, tree_hash: &[u8], length: u64, signature: &[u8], fork: u64) -> PyResult<bool> {
        let tree_hash: crypto::Hash = tree_hash
            .try_into()
            .map_err(|_| CoreError::new_err(format!("tree hash must be 32 bytes, got {}", tree_hash.len())))?;
        Ok(self.signer.verify_encoded(&tree_hash, length, fork, signature))
    }
}

/// A writer's signed tree whose signature checked out: proves entries of it by their nodes.
#[pyclass(frozen, module = "bzzz._core")]
pub struct VerifiedTree {
    inner: log::VerifiedTree,
}

#[pymethods]
impl VerifiedTree {
    /// Raises VerificationFailed unless entry `index` holds `value` in this tree, as `nodes` show.
    fn prove(&self, index: u64, value: &[u8], nodes: Vec<NodeTuple>) -> PyResult<()> {
        let nodes = nodes.into_iter().map(node_from_tuple).collect::<PyResult<Vec<_>>>()?;
        self.inner.prove(index, value, &nodes).map_err(log_error)
    }

    #[getter]
    fn tree_hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.verified().tree_hash)
    }
    #[getter]
    fn length(&self) -> u64 {
        self.inner.verified().length
    }
    #[getter]
    fn byte_length(&self) -> u64 {
        self.inner.verified().byte_length
    }
    #[getter]
    fn fork(&self) -> u64 {
        self.inner.verified().fork
    }

    fn __repr__(&self) -> String {
        let verified = self.inner.verified();
        format!("VerifiedTree(length={}, tree_hash={})", verified.length, hex::encode(verified.tree_hash))
    }
}

/// One agent's signed, append-only log on disk.
#[pyclass(frozen, module = "bzzz._core")]
pub struct MerkleLog {
    inner: Mutex<Option<Log>>,
}

fn durability(sync: bool) -> Durability {
    if sync {
        Durability::Power
    } else {
        Durability::Process
    }
}

impl MerkleLog {
    /// Run `f` on the open log with the GIL released (see the module docs).
    fn with<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut Log) -> Result<R, LogError> + Send) -> PyResult<R> {
        py.allow_threads(|| {
            let mut guard = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match guard.as_mut() {
                Some(log) => f(log).map_err(Some),
                None => Err(None),
            }
        })
        .map_err(|e| match e {
            Some(e) => log_error(e),
            None => CoreError::new_err("the log is closed"),
        })
    }

    fn checked_index(&self, py: Python<'_>, index: i64) -> PyResult<u64> {
        let length = self.with(py, |log| Ok(log.length()))?;
        if index < 0 || index as u64 >= length {
            return Err(PyIndexError::new_err(format!("entry {index} is out of range: the log has {length} entries")));
        }
        Ok(index as u64)
    }
}

#[pymethods]
impl MerkleLog {
    #[classmethod]
    #[pyo3(signature = (path, key_pair, *, compat = false, sync = false))]
    fn create(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        path: PathBuf,
        key_pair: &KeyPair,
        compat: bool,
        sync: bool,
    ) -> PyResult<Self> {
        let pair = key_pair.inner.clone();
        let log = py.allow_threads(|| Log::create(&path, pair, mode(compat), durability(sync))).map_err(log_error)?;
        Ok(Self { inner: Mutex::new(Some(log)) })
    }

    #[classmethod]
    #[pyo3(signature = (path, key_pair = None, *, sync = false))]
    fn open(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        path: PathBuf,
        key_pair: Option<&KeyPair>,
        sync: bool,
    ) -> PyResult<Self> {
        let pair = key_pair.map(|k| k.inner.clone());
        let log = py.allow_threads(|| Log::open(&path, pair, durability(sync))).map_err(log_error)?;
        Ok(Self { inner: Mutex::new(Some(log)) })
    }

    /// A new, empty replica of the log whose writer holds `public_key`.
    #[classmethod]
    #[pyo3(signature = (path, public_key, *, compat = false, sync = false))]
    fn create_replica(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        path: PathBuf,
        public_key: &[u8],
        compat: bool,
        sync: bool,
    ) -> PyResult<Self> {
        let public_key: [u8; crypto::PUBLIC_KEY_LEN] = public_key.try_into().map_err(|_| {
            CoreError::new_err(format!("public key must be {} bytes, got {}", crypto::PUBLIC_KEY_LEN, public_key.len()))
        })?;
        let log = py
            .allow_threads(|| Log::create_replica(&path, public_key, mode(compat), durability(sync)))
            .map_err(log_error)?;
        Ok(Self { inner: Mutex::new(Some(log)) })
    }

    /// Open a replica (or any log, without its key pair) to grow it with `append_verified`.
    #[classmethod]
    #[pyo3(signature = (path, *, sync = false))]
    fn open_replica(_cls: &Bound<'_, PyType>, py: Python<'_>, path: PathBuf, sync: bool) -> PyResult<Self> {
        let log = py.allow_threads(|| Log::open_replica(&path, durability(sync))).map_err(log_error)?;
        Ok(Self { inner: Mutex::new(Some(log)) })
    }

    fn append(&self, py: Python<'_>, data: &[u8]) -> PyResult<u64> {
        self.with(py, |log| log.append(data))
    }

    fn append_batch(&self, py: Python<'_>, entries: &Bound<'_, PyAny>) -> PyResult<u64> {
        let items = crate::convert::bytes_items(entries, "entries")?;
        let slices: Vec<&[u8]> = items.iter().map(|b| b.as_bytes()).collect();
        self.with(py, |log| log.append_batch(&slices))
    }

    fn append_verified(&self, py: Python<'_>, entries: &Bound<'_, PyAny>, signature: &[u8]) -> PyResult<u64> {
        let items = crate::convert::bytes_items(entries, "entries")?;
        let slices: Vec<&[u8]> = items.iter().map(|b| b.as_bytes()).collect();
        self.with(py, |log| log.append_verified(&slices, signature))
    }

    fn get<'py>(&self, py: Python<'py>, index: i64) -> PyResult<Bound<'py, PyBytes>> {
        let index = self.checked_index(py, index)?;
        let value = self.with(py, |log| log.get(index))?;
        Ok(PyBytes::new(py, &value))
    }

    fn proof(&self, py: Python<'_>, index: i64) -> PyResult<Proof> {
        let index = self.checked_index(py, index)?;
        Ok(Proof { inner: self.with(py, |log| log.proof(index))? })
    }

    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |log| log.verify())
    }

    #[getter]
    fn length(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |log| Ok(log.length()))
    }

    #[getter]
    fn byte_length(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |log| Ok(log.byte_length()))
    }

    #[getter]
    fn fork(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |log| Ok(log.fork()))
    }

    #[getter]
    fn key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.with(py, |log| Ok(log.key()))?))
    }

    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.with(py, |log| Ok(log.public_key()))?))
    }

    #[getter]
    fn compat(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |log| Ok(log.mode() == Mode::Compat))
    }

    #[getter]
    fn manifest<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(self.with(py, |log| Ok(log.manifest()))?.map(|m| PyBytes::new(py, &m)))
    }

    #[getter]
    fn discovery_key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.with(py, |log| Ok(log.discovery_key()))?))
    }

    #[getter]
    fn writable(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |log| Ok(log.writable()))
    }

    #[getter]
    fn replica(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |log| Ok(log.is_replica()))
    }

    #[getter]
    fn path(&self, py: Python<'_>) -> PyResult<PathBuf> {
        self.with(py, |log| Ok(log.path().to_path_buf()))
    }

    #[getter]
    fn recovery(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.with(py, |log| Ok(log.recovery().map(str::to_owned)))
    }

    fn tree_hash<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.with(py, |log| Ok(log.tree_hash()))?))
    }

    fn signature<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(self.with(py, |log| Ok(log.signature()))?.map(|s| PyBytes::new(py, &s)))
    }

    fn roots(&self, py: Python<'_>) -> PyResult<Vec<NodeTuple>> {
        self.with(py, |log| Ok(log.roots().iter().map(node_tuple).collect()))
    }

    /// Release the files and the writer's lock; further calls raise CoreError.
    fn close(&self, py: Python<'_>) {
        py.allow_threads(|| {
            self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        })
    }

    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.allow_threads(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).is_none())
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.length(py)? as usize)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) {
        self.close(py)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.with(py, |log| Ok((log.key(), log.length(), log.path().to_path_buf()))) {
            Ok((key, length, path)) => format!("MerkleLog(key={}, length={length}, path={path:?})", hex::encode(key)),
            Err(_) => "MerkleLog(closed)".to_string(),
        }
    }
}

/// The discovery key of a log key: what peers announce instead of the key itself.
#[pyfunction]
fn discovery_key<'py>(py: Python<'py>, key: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let key: [u8; crypto::PUBLIC_KEY_LEN] =
        key.try_into().map_err(|_| CoreError::new_err(format!("key must be 32 bytes, got {}", key.len())))?;
    Ok(PyBytes::new(py, &crypto::discovery_key(&key)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<KeyPair>()?;
    m.add_class::<MerkleLog>()?;
    m.add_class::<Proof>()?;
    m.add_class::<LogVerifier>()?;
    m.add_class::<VerifiedTree>()?;
    m.add_function(wrap_pyfunction!(discovery_key, m)?)?;
    Ok(())
}
