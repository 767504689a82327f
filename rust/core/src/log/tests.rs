use super::*;
use proptest::prelude::*;
use std::fs::OpenOptions;
use std::io::Write;

fn key_pair() -> KeyPair {
    KeyPair::from_seed(&[9u8; 32]).unwrap()
}

fn new_log(dir: &Path) -> Log {
    Log::create(&dir.join("log"), key_pair(), Mode::Manifest, Durability::Process).unwrap()
}

fn reopen(dir: &Path) -> Result<Log> {
    Log::open(&dir.join("log"), Some(key_pair()), Durability::Process)
}

fn entry(i: u64) -> Vec<u8> {
    format!("entry number {i}").into_bytes()
}

#[test]
fn appended_entries_read_back_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path());
    for i in 0..10 {
        assert_eq!(log.append(&entry(i)).unwrap(), i + 1);
    }
    log.append_batch(&(10..25).map(entry).collect::<Vec<_>>()).unwrap();
    let (hash, sig) = (log.tree_hash(), log.signature());
    drop(log);
    let log = reopen(dir.path()).unwrap();
    assert_eq!(log.length(), 25);
    assert_eq!(log.byte_length(), (0..25).map(|i| entry(i).len() as u64).sum::<u64>());
    assert_eq!((log.tree_hash(), log.signature()), (hash, sig));
    for i in 0..25 {
        assert_eq!(log.get(i).unwrap(), entry(i));
    }
    assert!(log.recovery().is_none());
    log.verify().unwrap();
}

#[test]
fn a_batch_is_signed_once_and_hashes_like_single_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut singles = Log::create(&dir.path().join("a"), key_pair(), Mode::Manifest, Durability::Process).unwrap();
    let mut batched = Log::create(&dir.path().join("b"), key_pair(), Mode::Manifest, Durability::Process).unwrap();
    for i in 0..13 {
        singles.append(&entry(i)).unwrap();
    }
    batched.append_batch(&(0..13).map(entry).collect::<Vec<_>>()).unwrap();
    assert_eq!(singles.tree_hash(), batched.tree_hash());
    assert_eq!(singles.signature(), batched.signature());
}

#[test]
fn every_proof_verifies_with_only_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path());
    let key = log.signer().clone();
    for n in 1..40u64 {
        log.append(&entry(n)).unwrap();
        for i in 0..n {
            let proof = log.proof(i).unwrap();
            let verified = proof.verify(&key).unwrap();
            assert_eq!(verified.tree_hash, log.tree_hash());
            assert_eq!(verified.byte_length, log.byte_length());
            assert_eq!(Proof::from_json(&proof.to_json()).unwrap(), proof);
        }
    }
}

/// The log's own signed tree, as a peer would report it.
fn signed_tree(log: &Log) -> SignedTree {
    SignedTree {
        fork: log.fork(),
        length: log.length(),
        roots: log.roots().to_vec(),
        signature: log.signature().unwrap(),
        manifest: log.signer().manifest().map(|_| log.signer().public_key()),
    }
}

#[test]
fn a_tree_checked_once_proves_every_entry_by_its_nodes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path());
    let key = log.signer().clone();
    for n in 1..40u64 {
        log.append(&entry(n)).unwrap();
        let tree = signed_tree(&log).verify(&key).unwrap();
        for i in 0..n {
            let proof = log.proof(i).unwrap();
            tree.prove(i, &proof.value, &proof.nodes).unwrap();
            assert_eq!(*tree.verified(), proof.verify(&key).unwrap());
        }
    }
}

#[test]
fn a_tree_refuses_entries_it_does_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path());
    log.append_batch(&(0..13).map(entry).collect::<Vec<_>>()).unwrap();
    let tree = signed_tree(&log).verify(log.signer()).unwrap();
    let proof = log.proof(5).unwrap();
    let refused = |r: Result<()>| matches!(r, Err(LogError::Verification(_)));
    assert!(refused(tree.prove(5, b"other content", &proof.nodes)));
    assert!(refused(tree.prove(4, &proof.value, &proof.nodes)));
    assert!(refused(tree.prove(5, &proof.value, &proof.nodes[1..])));
    assert!(refused(tree.prove(13, &entry(13), &[])));
    let mut forged = proof.nodes.clone();
    forged[0].hash[0] ^= 1;
    assert!(refused(tree.prove(5, &proof.value, &forged)));
}

#[test]
fn a_signed_tree_with_other_roots_or_signature_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path());
    log.append_batch(&(0..13).map(entry).collect::<Vec<_>>()).unwrap();
    let key = log.signer().clone();
    let refused = |tree: SignedTree| matches!(tree.verify(&key), Err(LogError::Verification(_)));
    assert!(!refused(signed_tree(&log)));
    let mut tree = signed_tree(&log);
    tree.roots[0].hash[0] ^= 1;
    assert!(refused(tree));
    let mut tree = signed_tree(&log);
    tree.roots.pop();
    assert!(refused(tree));
    let mut tree = signed_tree(&log);
    tree.length += 1;
    assert!(refused(tree));
    let mut tree = signed_tree(&log);
    tree.fork += 1;
    assert!(refused(tree));
    let other = Signer::new(
        PublicKey::from_bytes(&KeyPair::from_seed(&[1u8; 32]).unwrap().public_key()).unwrap(),
        Mode::Manifest,
    );
    assert!(matches!(signed_tree(&log).verify(&other), Err(LogError::Verification(_))));
}

#[test]
fn a_proof_from_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path());
    log.append_batch(&[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]).unwrap();
    let stranger = Signer::new(
        PublicKey::from_bytes(&KeyPair::from_seed(&[1u8; 32]).unwrap().public_key()).unwrap(),
        Mode::Manifest,
    );
    assert!(matches!(log.proof(1).unwrap().verify(&stranger), Err(LogError::Verification(_))));
}

#[test]
fn out_of_range_reads_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path());
    assert!(matches!(log.get(0), Err(LogError::Invalid(_))));
    log.append(b"x").unwrap();
    assert!(matches!(log.proof(1), Err(LogError::Invalid(_))));
}

#[test]
fn a_read_only_log_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    new_log(dir.path()).append(b"x").unwrap();
    let mut reader = Log::open(&dir.path().join("log"), None, Durability::Process).unwrap();
    assert!(matches!(reader.append(b"y"), Err(LogError::Invalid(_))));
    assert_eq!(reader.get(0).unwrap(), b"x");
}

#[test]
fn a_second_writer_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let _first = new_log(dir.path());
    match reopen(dir.path()) {
        Err(LogError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ResourceBusy),
        other => panic!("expected a lock error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_wrong_key_pair_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(new_log(dir.path()));
    let other = KeyPair::from_seed(&[3u8; 32]).unwrap();
    assert!(matches!(Log::open(&dir.path().join("log"), Some(other), Durability::Process), Err(LogError::Invalid(_))));
}

#[test]
fn creating_over_an_existing_log_fails() {
    let dir = tempfile::tempdir().unwrap();
    drop(new_log(dir.path()));
    match Log::create(&dir.path().join("log"), key_pair(), Mode::Manifest, Durability::Process) {
        Err(LogError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::AlreadyExists),
        other => panic!("expected AlreadyExists, got {:?}", other.map(|_| ())),
    }
}

fn append_raw(path: &Path, bytes: &[u8]) {
    OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
}

#[test]
fn a_torn_append_is_cut_back_to_the_last_signed_length() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path());
    log.append_batch(&(0..5).map(entry).collect::<Vec<_>>()).unwrap();
    let hash = log.tree_hash();
    drop(log);
    let root = dir.path().join("log");
    // As if the process died mid-append: data and some tree nodes written, half a record.
    append_raw(&root.join("data"), b"half written entry");
    append_raw(&root.join("tree"), &[7u8; 100]);
    append_raw(&root.join("signatures"), &[1u8; 50]);
    let log = reopen(dir.path()).unwrap();
    assert_eq!(log.length(), 5);
    assert_eq!(log.tree_hash(), hash);
    assert!(log.recovery().unwrap().contains("cut back to the last signed length 5"));
    log.verify().unwrap();
    drop(log);
    let log = reopen(dir.path()).unwrap();
    assert!(log.recovery().is_none(), "the cut is permanent");
}

#[test]
fn a_torn_append_that_completed_older_parents_is_cut_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path());
    log.append_batch(&(0..3).map(entry).collect::<Vec<_>>()).unwrap();
    let hash = log.tree_hash();
    log.append(&entry(3)).unwrap(); // completes node 3, inside length 3's tree file
    drop(log);
    let root = dir.path().join("log");
    let sigs = std::fs::read(root.join("signatures")).unwrap();
    std::fs::write(root.join("signatures"), &sigs[..sigs.len() - 3]).unwrap();
    let log = reopen(dir.path()).unwrap();
    assert_eq!(log.length(), 3);
    assert_eq!(log.tree_hash(), hash);
    log.verify().unwrap();
}

#[test]
fn the_signatures_file_is_compacted_without_losing_the_signed_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path());
    for i in 0..(COMPACT_RECORDS_AT + 10) {
        log.append(&i.to_le_bytes()).unwrap();
    }
    let size = std::fs::metadata(dir.path().join("log/signatures")).unwrap().len();
    assert!(size < 20 * RECORD_LEN, "signatures file has {size} bytes");
    log.verify().unwrap();
    drop(log);
    reopen(dir.path()).unwrap().verify().unwrap();
}

fn flip_is_caught(target: usize, offset: usize, bit: u8) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path());
    log.append_batch(&(0..4).map(entry).collect::<Vec<_>>()).unwrap();
    for i in 4..9 {
        log.append(&entry(i)).unwrap();
    }
    let length = log.length();
    drop(log);
    let names = ["header", "data", "tree", "signatures"];
    let path = dir.path().join("log").join(names[target % names.len()]);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = offset % bytes.len();
    bytes[at] ^= 1 << (bit % 8);
    std::fs::write(&path, &bytes).unwrap();
    // The flip must be caught: open or verify fails, or the log is visibly cut
    // back. What must never happen: the same length, reported clean, with
    // verify passing.
    let caught = match reopen(dir.path()) {
        Err(_) => true,
        Ok(log) => log.verify().is_err() || log.recovery().is_some() && log.length() < length,
    };
    (caught, format!("{} byte {at}", names[target % names.len()]))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn flipping_any_stored_bit_is_caught(target in 0usize..4, offset in 0usize..10_000, bit in 0u8..8) {
        let (caught, where_) = flip_is_caught(target, offset, bit);
        prop_assert!(caught, "flip at {} went unnoticed", where_);
    }

    #[test]
    fn random_appends_and_reopens_keep_every_entry(batches in prop::collection::vec(prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6), 1..8)) {
        let dir = tempfile::tempdir().unwrap();
        let mut expected: Vec<Vec<u8>> = Vec::new();
        drop(new_log(dir.path()));
        for batch in &batches {
            let mut log = reopen(dir.path()).unwrap();
            log.append_batch(batch).unwrap();
            expected.extend(batch.iter().cloned());
            prop_assert_eq!(log.length(), expected.len() as u64);
        }
        let log = reopen(dir.path()).unwrap();
        log.verify().unwrap();
        for (i, value) in expected.iter().enumerate() {
            prop_assert_eq!(&log.get(i as u64).unwrap(), value);
        }
    }
}

fn arbitrary_node() -> impl Strategy<Value = Node> {
    (any::<u64>(), any::<u64>(), any::<[u8; 32]>()).prop_map(|(index, size, hash)| Node { index, size, hash })
}

proptest! {
    // Proofs come from peers: whatever numbers they carry, checking one is an
    // error at worst, never a panic (which would reach Python as an abort risk).
    #[test]
    fn any_proof_a_peer_sends_is_checked_without_panicking(
        index in prop_oneof![any::<u64>(), 0u64..64],
        length in prop_oneof![any::<u64>(), 0u64..64],
        nodes in prop::collection::vec(arbitrary_node(), 0..8),
        roots in prop::collection::vec(arbitrary_node(), 0..8),
        value in prop::collection::vec(any::<u8>(), 0..16),
        signature in prop::collection::vec(any::<u8>(), 63..70),
    ) {
        let proof = Proof { fork: 0, index, value, nodes, length, roots, signature, manifest: None };
        let key = Signer::new(PublicKey::from_bytes(&key_pair().public_key()).unwrap(), Mode::Manifest);
        prop_assert!(proof.verify(&key).is_err());
    }

    // The same for a signed tree a peer reports, and for entries proven against one.
    #[test]
    fn any_signed_tree_or_entry_a_peer_sends_is_checked_without_panicking(
        length in prop_oneof![any::<u64>(), 0u64..64],
        roots in prop::collection::vec(arbitrary_node(), 0..8),
        signature in prop::collection::vec(any::<u8>(), 63..70),
        index in prop_oneof![any::<u64>(), 0u64..64],
        nodes in prop::collection::vec(arbitrary_node(), 0..8),
        value in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let key = Signer::new(PublicKey::from_bytes(&key_pair().public_key()).unwrap(), Mode::Manifest);
        let tree = SignedTree { fork: 0, length, roots, signature, manifest: None };
        prop_assert!(tree.verify(&key).is_err());
        let dir = tempfile::tempdir().unwrap();
        let mut log = new_log(dir.path());
        log.append_batch(&(0..13).map(entry).collect::<Vec<_>>()).unwrap();
        let genuine = signed_tree(&log).verify(log.signer()).unwrap();
        prop_assert!(genuine.prove(index, &value, &nodes).is_err());
    }

    #[test]
    fn any_text_parses_as_a_proof_or_an_error(text in ".{0,200}") {
        let _ = Proof::from_json(&text);
    }
}

#[test]
fn a_real_proof_with_an_overflowing_sibling_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path());
    log.append_batch(&(0..4).map(entry).collect::<Vec<_>>()).unwrap();
    let mut proof = log.proof(0).unwrap();
    proof.nodes[0].size = u64::MAX;
    let key = log.signer().clone();
    assert!(matches!(proof.verify(&key), Err(LogError::Verification(_))));
}

#[test]
fn both_modes_sign_the_same_tree_but_name_the_log_differently() {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = Log::create(&dir.path().join("m"), key_pair(), Mode::Manifest, Durability::Process).unwrap();
    let mut compat = Log::create(&dir.path().join("c"), key_pair(), Mode::Compat, Durability::Process).unwrap();
    manifest.append_batch(&(0..5).map(entry).collect::<Vec<_>>()).unwrap();
    compat.append_batch(&(0..5).map(entry).collect::<Vec<_>>()).unwrap();
    assert_eq!(manifest.tree_hash(), compat.tree_hash());
    assert_eq!(compat.key(), key_pair().public_key());
    assert_eq!(manifest.key(), crypto::manifest_hash(&crypto::default_manifest(&key_pair().public_key())));
    assert_eq!(manifest.signature().unwrap().len(), crypto::MULTISIG_LEN);
    assert_eq!(compat.signature().unwrap().len(), crypto::SIGNATURE_LEN);
    // A proof is only good for the mode it was made in.
    assert!(manifest.proof(2).unwrap().verify(compat.signer()).is_err());
    assert!(compat.proof(2).unwrap().verify(manifest.signer()).is_err());
    drop((manifest, compat));
    let reopened = Log::open(&dir.path().join("c"), None, Durability::Process).unwrap();
    assert_eq!(reopened.mode(), Mode::Compat);
    reopened.verify().unwrap();
}

// --- replicas -------------------------------------------------------------------

/// The entries of an update a peer sends.
type Update<'a> = &'a [Vec<u8>];

fn writer_and_replica(dir: &Path, mode: Mode) -> (Log, Log) {
    let writer = Log::create(&dir.join("writer"), key_pair(), mode, Durability::Process).unwrap();
    let replica =
        Log::create_replica(&dir.join("replica"), key_pair().public_key(), mode, Durability::Process).unwrap();
    (writer, replica)
}

/// What a peer sends for the writer's entries `from..`: the entries and the newest signature.
fn update(writer: &Log, from: u64) -> (Vec<Vec<u8>>, Vec<u8>) {
    ((from..writer.length()).map(|i| writer.get(i).unwrap()).collect(), writer.signature().unwrap())
}

/// Every file of a log's directory, by name.
fn files_of(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn assert_same_log(replica: &Log, writer: &Log) {
    assert_eq!(replica.key(), writer.key());
    assert_eq!(replica.length(), writer.length());
    assert_eq!(replica.byte_length(), writer.byte_length());
    assert_eq!(replica.tree_hash(), writer.tree_hash());
    assert_eq!(replica.roots(), writer.roots());
    assert_eq!(replica.signature(), writer.signature());
    for i in 0..writer.length() {
        assert_eq!(replica.proof(i).unwrap(), writer.proof(i).unwrap(), "proof {i}");
    }
}

#[test]
fn a_replica_fed_batch_by_batch_becomes_the_writers_log() {
    for mode in [Mode::Manifest, Mode::Compat] {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, mut replica) = writer_and_replica(dir.path(), mode);
        assert!(replica.writable() && replica.is_replica());
        assert!(writer.writable() && !writer.is_replica());
        let mut next = 0;
        for size in [1u64, 3, 1, 7, 16, 2, 33, 1, 64] {
            let old = writer.length();
            writer.append_batch(&(next..next + size).map(entry).collect::<Vec<_>>()).unwrap();
            next += size;
            let (entries, signature) = update(&writer, old);
            assert_eq!(replica.append_verified(&entries, &signature).unwrap(), writer.length());
            assert_same_log(&replica, &writer);
        }
        // Nothing new, with the signature of the current length: checked, nothing written.
        let before = files_of(&dir.path().join("replica"));
        let no_entries: &[Vec<u8>] = &[];
        assert_eq!(replica.append_verified(no_entries, &writer.signature().unwrap()).unwrap(), writer.length());
        assert_eq!(files_of(&dir.path().join("replica")), before);
        replica.verify().unwrap();
        let key = writer.signer().clone();
        replica.proof(5).unwrap().verify(&key).unwrap();

        // Closed and reopened, it carries on.
        drop(replica);
        let mut replica = Log::open_replica(&dir.path().join("replica"), Durability::Power).unwrap();
        assert!(replica.recovery().is_none());
        assert_same_log(&replica, &writer);
        let old = writer.length();
        writer.append(b"after reopening").unwrap();
        let (entries, signature) = update(&writer, old);
        replica.append_verified(&entries, &signature).unwrap();
        assert_same_log(&replica, &writer);
        replica.verify().unwrap();
    }
}

#[test]
fn nothing_unsigned_ever_reaches_a_replica() {
    for mode in [Mode::Manifest, Mode::Compat] {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, mut replica) = writer_and_replica(dir.path(), mode);
        writer.append_batch(&(0..5).map(entry).collect::<Vec<_>>()).unwrap();
        let (entries, signature) = update(&writer, 0);
        replica.append_verified(&entries, &signature).unwrap();
        let stale = writer.signature().unwrap();
        writer.append_batch(&(5..9).map(entry).collect::<Vec<_>>()).unwrap();
        let (entries, signature) = update(&writer, 5);

        // The same key pair, signing other entries from entry 3 on: a fork.
        let mut fork = Log::create(&dir.path().join("fork"), key_pair(), mode, Durability::Process).unwrap();
        fork.append_batch(&(0..3).map(entry).collect::<Vec<_>>()).unwrap();
        fork.append_batch(&(3..9).map(|i| format!("forked {i}").into_bytes()).collect::<Vec<_>>()).unwrap();
        let (fork_entries, fork_signature) = update(&fork, 5);
        // Another writer's signature of the very same entries.
        let mut stranger = Log::create(
            &dir.path().join("stranger"),
            KeyPair::from_seed(&[4u8; 32]).unwrap(),
            mode,
            Durability::Process,
        )
        .unwrap();
        stranger.append_batch(&(0..9).map(entry).collect::<Vec<_>>()).unwrap();
        assert_eq!(stranger.tree_hash(), writer.tree_hash());

        let mut tampered = entries.clone();
        tampered[2][0] ^= 1;
        let mut flipped = signature.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let mut bad_bit = signature.clone();
        bad_bit[10] ^= 1;
        let longer = [signature.as_slice(), &[0]].concat();
        let shorter = signature[..signature.len() - 1].to_vec();
        let one_too_many = [entries.clone(), vec![b"extra".to_vec()]].concat();
        let strangers = stranger.signature().unwrap();
        let other_form = if mode == Mode::Manifest {
            crypto::decode_multisig(&signature).unwrap().to_vec()
        } else {
            crypto::encode_multisig(&signature.clone().try_into().unwrap()).to_vec()
        };
        let cases: Vec<(&str, Update<'_>, &[u8])> = vec![
            ("a tampered entry", &tampered, &signature),
            ("an entry missing", &entries[..3], &signature),
            ("an entry too many", &one_too_many, &signature),
            ("a stale signature", &entries, &stale),
            ("a damaged signature", &entries, &bad_bit),
            ("a signature with its last byte flipped", &entries, &flipped),
            ("a longer signature", &entries, &longer),
            ("a shorter signature", &entries, &shorter),
            ("the other mode's form of the signature", &entries, &other_form),
            ("no signature", &entries, &[]),
            ("another writer's signature", &entries, &strangers),
            ("a fork's entries", &fork_entries, &fork_signature),
            ("a fork's signature", &entries, &fork_signature),
            ("the writer's signature over nothing new", &[], &signature),
        ];
        let before = files_of(&dir.path().join("replica"));
        for (what, entries, signature) in cases {
            match replica.append_verified(entries, signature) {
                Err(LogError::Verification(_)) => {}
                other => panic!("{mode:?}, {what}: expected a verification error, got {other:?}"),
            }
            assert_eq!(replica.length(), 5, "{what}");
            assert_eq!(files_of(&dir.path().join("replica")), before, "{mode:?}, {what}: the replica changed");
        }
        drop(replica);
        let mut replica = Log::open_replica(&dir.path().join("replica"), Durability::Process).unwrap();
        assert!(replica.recovery().is_none());
        assert_eq!(replica.append_verified(&entries, &signature).unwrap(), 9);
        assert_same_log(&replica, &writer);
        replica.verify().unwrap();
    }
}

#[test]
fn a_torn_verified_append_is_cut_back_when_the_replica_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, mut replica) = writer_and_replica(dir.path(), Mode::Manifest);
    writer.append_batch(&(0..5).map(entry).collect::<Vec<_>>()).unwrap();
    let (entries, signature) = update(&writer, 0);
    replica.append_verified(&entries, &signature).unwrap();
    drop(replica);
    let root = dir.path().join("replica");
    append_raw(&root.join("data"), b"half written entry");
    append_raw(&root.join("tree"), &[7u8; 100]);
    append_raw(&root.join("signatures"), &[1u8; 50]);
    let mut replica = Log::open_replica(&root, Durability::Process).unwrap();
    assert!(replica.recovery().unwrap().contains("cut back to the last signed length 5"));
    assert_same_log(&replica, &writer);
    replica.verify().unwrap();
    writer.append_batch(&(5..8).map(entry).collect::<Vec<_>>()).unwrap();
    let (entries, signature) = update(&writer, 5);
    replica.append_verified(&entries, &signature).unwrap();
    assert_same_log(&replica, &writer);
    drop(replica);
    let replica = Log::open_replica(&root, Durability::Process).unwrap();
    assert!(replica.recovery().is_none(), "the cut is permanent");
    replica.verify().unwrap();
}

#[test]
fn a_replica_opens_read_only_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, mut replica) = writer_and_replica(dir.path(), Mode::Compat);
    writer.append_batch(&(0..4).map(entry).collect::<Vec<_>>()).unwrap();
    let (entries, signature) = update(&writer, 0);
    replica.append_verified(&entries, &signature).unwrap();
    // Readers take no lock: one may read while the replica is open.
    let mut reader = Log::open(&dir.path().join("replica"), None, Durability::Process).unwrap();
    assert!(!reader.writable() && !reader.is_replica());
    assert_eq!(reader.mode(), Mode::Compat);
    assert_same_log(&reader, &writer);
    reader.verify().unwrap();
    assert!(matches!(reader.append_verified(&entries, &signature), Err(LogError::Invalid(_))));
    assert!(matches!(reader.append(b"x"), Err(LogError::Invalid(_))));
}

#[test]
fn writers_sign_and_replicas_verify_never_the_other_way_round() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, mut replica) = writer_and_replica(dir.path(), Mode::Manifest);
    writer.append(b"x").unwrap();
    let (entries, signature) = update(&writer, 0);
    assert!(matches!(writer.append_verified(&entries, &signature), Err(LogError::Invalid(_))));
    assert!(matches!(replica.append(b"x"), Err(LogError::Invalid(_))));
    let no_entries: &[&[u8]] = &[];
    assert!(matches!(replica.append_batch(no_entries), Err(LogError::Invalid(_))));
    assert_eq!((writer.length(), replica.length()), (1, 0));
    // A writer's log, opened as a replica, grows by verified appends only.
    drop(writer);
    let mut copy = Log::open_replica(&dir.path().join("writer"), Durability::Process).unwrap();
    assert!(matches!(copy.append(b"y"), Err(LogError::Invalid(_))));
    assert_eq!(copy.length(), 1);
}

#[test]
fn one_replicator_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_writer, replica) = writer_and_replica(dir.path(), Mode::Manifest);
    let root = dir.path().join("replica");
    for second in
        [Log::open_replica(&root, Durability::Process), Log::open(&root, Some(key_pair()), Durability::Process)]
    {
        match second {
            Err(LogError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ResourceBusy),
            other => panic!("expected a lock error, got {:?}", other.map(|_| ())),
        }
    }
    drop(replica);
    Log::open_replica(&root, Durability::Process).unwrap();
}

#[test]
fn creating_a_replica_over_a_log_or_with_a_bad_key_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, replica) = writer_and_replica(dir.path(), Mode::Manifest);
    drop((writer, replica));
    for name in ["writer", "replica"] {
        match Log::create_replica(&dir.path().join(name), key_pair().public_key(), Mode::Manifest, Durability::Process)
        {
            Err(LogError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::AlreadyExists),
            other => panic!("expected AlreadyExists, got {:?}", other.map(|_| ())),
        }
    }
    let bad = (0..=255u8).map(|b| [b; 32]).find(|k| PublicKey::from_bytes(k).is_err()).expect("some bytes are no key");
    let at = dir.path().join("bad");
    assert!(matches!(Log::create_replica(&at, bad, Mode::Manifest, Durability::Process), Err(LogError::Key(_))));
    assert!(!at.exists(), "nothing is created for a bad key");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_batches_replicate_exactly(batches in prop::collection::vec(prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6), 1..8), compat in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, mut replica) = writer_and_replica(dir.path(), if compat { Mode::Compat } else { Mode::Manifest });
        for batch in &batches {
            let old = writer.length();
            writer.append_batch(batch).unwrap();
            if writer.length() > 0 {
                let (entries, signature) = update(&writer, old);
                prop_assert_eq!(replica.append_verified(&entries, &signature).unwrap(), writer.length());
            }
        }
        assert_same_log(&replica, &writer);
        replica.verify().unwrap();
    }
}
