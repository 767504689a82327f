//! Known answers from npm hypercore 11.37.1 itself (tests/vectors/hypercore-11.json,
//! made by tests/vectors/generate.py): the Rust log must give the same key,
//! discovery key, manifest, tree hash and signature for the same key pair and
//! batches, make the same proof, and accept hypercore's proof.

use bzzz_core::crypto::{KeyPair, PublicKey};
use bzzz_core::log::{Durability, Log, Mode, Proof, Signer};
use serde_json::Value;

const VECTORS: &str = include_str!("../../../tests/vectors/hypercore-11.json");

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("a hex string")).expect("valid hex")
}

#[test]
fn the_log_matches_hypercore_11_byte_for_byte() {
    let vectors: Value = serde_json::from_str(VECTORS).unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = format!("{} (compat: {})", case["name"], case["compat"]);
        let mode = if case["compat"].as_bool().unwrap() { Mode::Compat } else { Mode::Manifest };
        let dir = tempfile::tempdir().unwrap();
        let key_pair = KeyPair::from_seed(&hex(&case["seed"])).unwrap();
        let mut log = Log::create(&dir.path().join("log"), key_pair, mode, Durability::Process).unwrap();
        for batch in case["batches"].as_array().unwrap() {
            let entries: Vec<Vec<u8>> = batch.as_array().unwrap().iter().map(hex).collect();
            log.append_batch(&entries).unwrap();
        }
        assert_eq!(log.key().to_vec(), hex(&case["key"]), "{name}: key");
        assert_eq!(log.discovery_key().to_vec(), hex(&case["discoveryKey"]), "{name}: discovery key");
        assert_eq!(log.public_key().to_vec(), hex(&case["publicKey"]), "{name}: public key");
        assert_eq!(
            log.manifest().map(|m| m.to_vec()),
            case["manifest"].as_str().map(|_| hex(&case["manifest"])),
            "{name}: manifest"
        );
        assert_eq!(log.tree_hash().to_vec(), hex(&case["treeHash"]), "{name}: tree hash");
        assert_eq!(log.signature().unwrap(), hex(&case["signature"]), "{name}: signature");
        assert_eq!(log.length(), case["length"].as_u64().unwrap(), "{name}: length");
        assert_eq!(log.byte_length(), case["byteLength"].as_u64().unwrap(), "{name}: byte length");

        let theirs = &case["proof"];
        let index = theirs["block"]["index"].as_u64().unwrap();
        let ours: Value = serde_json::from_str(&log.proof(index).unwrap().to_json()).unwrap();
        assert_eq!(&ours, theirs, "{name}: proof of entry {index}");
        let signer = Signer::new(PublicKey::from_bytes(&log.public_key()).unwrap(), mode);
        let verified = Proof::from_json(&theirs.to_string()).unwrap().verify(&signer).unwrap();
        assert_eq!(verified.tree_hash.to_vec(), hex(&case["treeHash"]), "{name}: verified tree hash");
    }
}
