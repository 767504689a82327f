use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::crypto::{self, KeyPair, PublicKey, PUBLIC_KEY_LEN};

const NOW: u64 = 1_750_000_000_000;
const MSG_ID: &str = "00112233445566778899aabbccddeeff";
const HEX32_A: &str = "0123456789abcdef0123456789abcdef";

fn alice() -> KeyPair {
    KeyPair::from_seed(&[7u8; 32]).unwrap()
}

fn bob() -> KeyPair {
    KeyPair::from_seed(&[9u8; 32]).unwrap()
}

fn meta_payload() -> Value {
    json!({
        "issue_id": "bzzz/demo#12",
        "parent_id": null,
        "content": {"query_type": "plan", "text": "fix the parser", "parameters": {"steps": 3}},
    })
}

/// One valid (type, topic, payload) per message type.
fn samples() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "capabilities",
            TOPIC_CAPABILITIES,
            json!({
                "node_id": "walnut", "peer_id": "12D3KooWabc", "models": ["llama3.1:8b", "qwen2.5-coder"],
                "tools": ["git", "cargo"], "load_permille": 250, "active_tasks": 1, "max_tasks": 4,
                "log_key": hex::encode([1u8; 32]), "version": "0.1.0",
            }),
        ),
        (
            "task_help_request",
            TOPIC_HELP,
            json!({"request_id": HEX32_A, "task_id": "bzzz/demo#12", "problem": "tests fail",
                   "tried": ["rerun"], "needs": ["rust"]}),
        ),
        (
            "task_help_response",
            TOPIC_HELP,
            json!({"request_id": HEX32_A, "task_id": "bzzz/demo#12", "can_help": true, "text": "try this"}),
        ),
        ("meta_msg", "bzzz/meta/issue/anthonyrawlins/bzzz/12", meta_payload()),
        (
            "escalation",
            TOPIC_ESCALATION,
            json!({"issue_id": "bzzz/demo#12", "reason": "stuck", "summary": "3 help rounds failed",
                   "messages": [HEX32_A]}),
        ),
    ]
}

fn sign_meta(payload: Value) -> Result<Envelope, Rejected> {
    Envelope::sign(&alice(), "meta_msg", "bzzz/meta/issue/o/r/1", "walnut", MSG_ID, 5, NOW, 60, 0, payload)
}

fn signed() -> Envelope {
    sign_meta(meta_payload()).unwrap()
}

fn verify(bytes: &[u8]) -> Result<Envelope, Rejected> {
    parse_and_verify(bytes, &Limits::default(), NOW)
}

fn reason_of(bytes: &[u8]) -> Reason {
    verify(bytes).expect_err("should be rejected").reason
}

/// The wire object of `signed()` as a `Value`, to edit and re-send.
fn wire_value() -> Map<String, Value> {
    match serde_json::from_slice(&signed().to_bytes()).unwrap() {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// Sign an arbitrary object as alice would, bypassing `Envelope::sign`'s checks,
/// so that only the receiver's checks decide.
fn sign_raw(mut obj: Map<String, Value>) -> Vec<u8> {
    obj.remove("sig");
    let mut value = Value::Object(obj);
    value.sort_all_objects();
    let mut signed = DOMAIN_TAG.to_vec();
    signed.extend_from_slice(&canonical_json(&value));
    let sig = alice().sign(&signed);
    let Value::Object(mut obj) = value else { unreachable!() };
    obj.insert("sig".into(), Value::String(hex::encode(sig)));
    serde_json::to_vec(&Value::Object(obj)).unwrap()
}

fn with(edit: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
    let mut obj = wire_value();
    edit(&mut obj);
    sign_raw(obj)
}

fn with_payload(edit: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
    with(|obj| {
        if let Some(Value::Object(p)) = obj.get_mut("payload") {
            edit(p)
        }
    })
}

// --- round trips and the canonical form -----------------------------------

#[test]
fn every_message_type_signs_and_verifies() {
    for (kind, topic, payload) in samples() {
        let env = Envelope::sign(&alice(), kind, topic, "walnut", MSG_ID, 1, NOW, 60, 0, payload.clone()).unwrap();
        let back = verify(&env.to_bytes()).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.message_type().as_str(), kind);
        assert_eq!(back.payload(), &payload);
        assert_eq!(back.sender(), &alice().public_key());
    }
}

#[test]
fn the_signed_bytes_are_the_domain_tag_and_the_canonical_object_without_sig() {
    let env = signed();
    let expected = format!(
        "bzzz/envelope/v1\n{{\"from\":\"{}\",\"hop_count\":0,\"msg_id\":\"{MSG_ID}\",\"node_id\":\"walnut\",\
         \"payload\":{{\"content\":{{\"parameters\":{{\"steps\":3}},\"query_type\":\"plan\",\"text\":\"fix the parser\"}},\
         \"issue_id\":\"bzzz/demo#12\",\"parent_id\":null}},\"seq\":5,\"topic\":\"bzzz/meta/issue/o/r/1\",\
         \"ts\":{NOW},\"ttl\":60,\"type\":\"meta_msg\",\"v\":1}}",
        hex::encode(alice().public_key())
    );
    assert_eq!(std::str::from_utf8(env.signed_bytes()).unwrap(), expected);
    assert!(PublicKey::from_bytes(&alice().public_key()).unwrap().verify(expected.as_bytes(), env.signature()));
}

#[test]
fn the_wire_bytes_are_the_canonical_object_with_sig_in_its_sorted_place() {
    let env = signed();
    let wire = String::from_utf8(env.to_bytes()).unwrap();
    let body = std::str::from_utf8(&env.signed_bytes()[DOMAIN_TAG.len()..]).unwrap();
    let sig = format!(",\"sig\":\"{}\"", hex::encode(env.signature()));
    assert_eq!(wire, body.replacen(",\"topic\":", &format!("{sig},\"topic\":"), 1));
    let value = parse_strict(wire.as_bytes()).unwrap();
    assert_eq!(canonical_json(&value), wire.as_bytes());
}

#[test]
fn key_order_and_whitespace_do_not_change_what_is_signed() {
    let env = signed();
    // Reverse every object's key order and pretty-print.
    fn reversed(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(m.iter().rev().map(|(k, v)| (k.clone(), reversed(v))).collect()),
            Value::Array(a) => Value::Array(a.iter().map(reversed).collect()),
            other => other.clone(),
        }
    }
    let messy = serde_json::to_vec_pretty(&reversed(&parse_strict(&env.to_bytes()).unwrap())).unwrap();
    assert_ne!(messy, env.to_bytes());
    let back = verify(&messy).unwrap();
    assert_eq!(back.signed_bytes(), env.signed_bytes());
    assert_eq!(back.to_bytes(), env.to_bytes());
    assert_eq!(message_id(&messy), message_id(&env.to_bytes()));
}

#[test]
fn strings_are_escaped_as_jcs_escapes_them() {
    let s = "q\"b\\/\u{8}\u{c}\n\r\t\u{0}\u{1f}\u{7f}é\u{2028}😀";
    let mut out = Vec::new();
    write_str(&mut out, s);
    assert_eq!(std::str::from_utf8(&out).unwrap(), "\"q\\\"b\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\u{7f}é\u{2028}😀\"");
    assert_eq!(parse_strict(&out).unwrap(), Value::String(s.into()));
}

#[test]
fn keys_sort_by_their_utf8_bytes() {
    let v = parse_strict("{\"b\":1,\"a\":2,\"\u{e9}\":3,\"Z\":4,\"\u{1f600}\":5,\"\u{ff61}\":6,\"aa\":7}".as_bytes())
        .unwrap();
    assert_eq!(
        String::from_utf8(canonical_json(&v)).unwrap(),
        "{\"Z\":4,\"a\":2,\"aa\":7,\"b\":1,\"\u{e9}\":3,\"\u{ff61}\":6,\"\u{1f600}\":5}"
    );
}

#[test]
fn integers_at_the_ends_of_i64_and_u64_are_accepted_and_kept_exact() {
    let text = format!("[{},{},0,-1]", i64::MIN, u64::MAX);
    let v = parse_strict(text.as_bytes()).unwrap();
    assert_eq!(canonical_json(&v), text.as_bytes());
}

#[test]
fn floats_and_integers_out_of_range_are_malformed() {
    for bad in ["1.0", "1e3", "1E3", "-0", "-0.0", "18446744073709551616", "-9223372036854775809", "NaN", "Infinity"] {
        let text = format!("{{\"x\":{bad}}}");
        assert_eq!(parse_strict(text.as_bytes()).unwrap_err().reason, Reason::Malformed, "{bad}");
    }
}

#[test]
fn duplicate_keys_are_malformed_even_when_spelled_differently() {
    assert_eq!(parse_strict(br#"{"a":1,"a":1}"#).unwrap_err().reason, Reason::Malformed);
    assert_eq!(parse_strict(br#"{"a":1,"\u0061":2}"#).unwrap_err().reason, Reason::Malformed);
    assert_eq!(parse_strict(br#"{"x":{"b":1,"c":{},"b":2}}"#).unwrap_err().reason, Reason::Malformed);
    assert!(parse_strict(br#"[{"a":1},{"a":1}]"#).is_ok());
}

#[test]
fn lone_surrogates_bad_utf8_and_trailing_bytes_are_malformed() {
    for bad in [&br#"{"a":"\ud800"}"#[..], b"{\"a\":\"\xff\"}", b"{} x", b"\xef\xbb\xbf{}", b"", b"{\"a\":\"\x01\"}"] {
        assert_eq!(parse_strict(bad).unwrap_err().reason, Reason::Malformed, "{:?}", String::from_utf8_lossy(bad));
    }
    assert_eq!(parse_strict(br#"{"a":"\ud83d\ude00"}"#).unwrap(), json!({"a": "😀"}));
}

#[test]
fn nesting_up_to_the_limit_is_accepted_and_beyond_is_malformed() {
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(parse_strict(nested(MAX_DEPTH).as_bytes()).is_ok());
    assert_eq!(parse_strict(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err().reason, Reason::Malformed);
    assert_eq!(parse_strict(nested(30_000).as_bytes()).unwrap_err().reason, Reason::Malformed);
}

// --- what a receiver refuses, and why -------------------------------------

#[test]
fn an_envelope_over_the_size_limit_is_refused_before_it_is_parsed() {
    let garbage = vec![b'x'; Limits::default().max_size + 1];
    assert_eq!(reason_of(&garbage), Reason::Size);
    let limits = Limits { max_size: 100, ..Limits::default() };
    assert_eq!(parse_and_verify(&signed().to_bytes(), &limits, NOW).unwrap_err().reason, Reason::Size);
}

#[test]
fn something_other_than_an_object_is_malformed() {
    for bad in [&b"[]"[..], b"\"x\"", b"1", b"null", b"not json"] {
        assert_eq!(reason_of(bad), Reason::Malformed);
    }
}

#[test]
fn bad_hex_in_from_msg_id_or_sig_is_malformed() {
    let upper = |key: &'static str| {
        let mut obj = wire_value();
        let s = obj[key].as_str().unwrap().to_uppercase();
        obj.insert(key.into(), Value::String(s));
        serde_json::to_vec(&obj).unwrap()
    };
    for key in ["from", "msg_id", "sig"] {
        assert_eq!(reason_of(&upper(key)), Reason::Malformed, "{key}");
    }
    let short = with(|o| {
        o.insert("msg_id".into(), json!("abc"));
    });
    assert_eq!(reason_of(&short), Reason::Malformed);
}

#[test]
fn a_missing_field_an_unknown_field_or_a_wrong_type_is_schema() {
    for key in ENVELOPE_KEYS {
        let bytes = with(|o| {
            o.remove(key);
        });
        // Without sig the signer re-adds one, so a missing sig is tested below.
        if key != "sig" {
            assert_eq!(reason_of(&bytes), Reason::Schema, "missing {key}");
        }
    }
    let mut no_sig = wire_value();
    no_sig.remove("sig");
    assert_eq!(reason_of(&serde_json::to_vec(&no_sig).unwrap()), Reason::Schema);
    let cases: Vec<(&str, Value)> = vec![
        ("extra", json!(1)),
        ("v", json!(2)),
        ("v", json!("1")),
        ("hop_count", json!(256)),
        ("hop_count", json!(-1)),
        ("hop_count", json!(true)),
        ("ttl", json!(1u64 << 32)),
        ("seq", json!(-5)),
        ("ts", json!("now")),
        ("type", json!("gossip")),
        ("type", json!("capabilities")),
        ("topic", json!("bzzz/meta/issue/o/r/01")),
        ("topic", json!("bzzz/meta/issue/o/r")),
        ("topic", json!("bzzz/meta/issue/o/r/1/x")),
        ("topic", json!("bzzz/meta/issue/o w/r/1")),
        ("node_id", json!("")),
        ("node_id", json!("n".repeat(257))),
        ("node_id", json!(7)),
        ("payload", json!([])),
        ("from", json!(7)),
    ];
    for (key, value) in cases {
        let bytes = with(|o| {
            o.insert(key.into(), value.clone());
        });
        assert_eq!(reason_of(&bytes), Reason::Schema, "{key} = {value}");
    }
}

#[test]
fn payloads_that_break_their_schema_are_schema() {
    let cases: Vec<(&str, Value)> = vec![
        ("issue_id", json!("")),
        ("issue_id", Value::Null),
        ("parent_id", json!("xyz")),
        ("parent_id", json!(HEX32_A.to_uppercase())),
        ("content", json!({"query_type": "rant", "text": "", "parameters": {}})),
        ("content", json!({"query_type": "plan", "text": "", "parameters": []})),
        ("content", json!({"query_type": "plan", "parameters": {}})),
        ("content", json!({"query_type": "plan", "text": "x".repeat(8193), "parameters": {}})),
        ("content", json!("plan")),
    ];
    for (key, value) in cases {
        let bytes = with_payload(|p| {
            p.insert(key.into(), value.clone());
        });
        assert_eq!(reason_of(&bytes), Reason::Schema, "{key} = {value}");
    }
    let missing = with_payload(|p| {
        p.remove("issue_id");
    });
    assert_eq!(reason_of(&missing), Reason::Schema);
}

#[test]
fn each_type_checks_its_own_fields() {
    let broken: Vec<(usize, &str, Value)> = vec![
        (0, "load_permille", json!(100_001)),
        (0, "load_permille", json!(-1)),
        (0, "models", json!(["ok", ""])),
        (0, "models", json!(vec!["m"; 257])),
        (0, "tools", json!("git")),
        (0, "log_key", json!("00")),
        (0, "max_tasks", json!(1u64 << 32)),
        (1, "request_id", json!(7)),
        (1, "tried", json!([1])),
        (1, "problem", json!("p".repeat(8193))),
        (2, "can_help", json!(1)),
        (2, "text", Value::Null),
        (4, "messages", json!(["nope"])),
        (4, "summary", json!({})),
    ];
    for (i, field, value) in broken {
        let (kind, topic, mut payload) = samples().swap_remove(i);
        payload[field] = value.clone();
        let err = Envelope::sign(&alice(), kind, topic, "walnut", MSG_ID, 1, NOW, 60, 0, payload).unwrap_err();
        assert_eq!(err.reason, Reason::Schema, "{kind}.{field} = {value}");
    }
}

#[test]
fn unknown_payload_fields_are_allowed_but_still_integers_only() {
    let mut payload = meta_payload();
    payload["x-extra"] = json!({"nested": [1, "two", null, true]});
    assert!(verify(&sign_meta(payload).unwrap().to_bytes()).is_ok());
    let text = String::from_utf8(signed().to_bytes()).unwrap().replacen("\"steps\":3", "\"steps\":3.5", 1);
    assert_eq!(reason_of(text.as_bytes()), Reason::Malformed);
}

#[test]
fn a_type_on_the_wrong_topic_is_schema() {
    for (kind, _, payload) in samples() {
        let err = Envelope::sign(&alice(), kind, "bzzz/elsewhere", "n", MSG_ID, 1, NOW, 60, 0, payload).unwrap_err();
        assert_eq!(err.reason, Reason::Schema);
    }
}

#[test]
fn too_many_hops_are_refused() {
    let bytes = with(|o| {
        o.insert("hop_count".into(), json!(4));
    });
    assert_eq!(reason_of(&bytes), Reason::Hops);
    let limits = Limits { max_hops: 4, ..Limits::default() };
    assert!(parse_and_verify(&bytes, &limits, NOW).is_ok());
}

#[test]
fn a_ttl_above_the_limit_is_refused() {
    let bytes = with(|o| {
        o.insert("ttl".into(), json!(3601));
    });
    assert_eq!(reason_of(&bytes), Reason::Ttl);
}

#[test]
fn a_message_from_too_far_in_the_future_is_refused_as_skew() {
    let at = |ts: u64| {
        with(|o| {
            o.insert("ts".into(), json!(ts));
        })
    };
    assert!(verify(&at(NOW + 30_000)).is_ok());
    assert_eq!(reason_of(&at(NOW + 30_001)), Reason::Skew);
}

#[test]
fn a_message_is_valid_up_to_ts_plus_ttl_and_expired_after() {
    let bytes = signed().to_bytes();
    let limits = Limits::default();
    assert!(parse_and_verify(&bytes, &limits, NOW + 60_000).is_ok());
    assert_eq!(parse_and_verify(&bytes, &limits, NOW + 60_001).unwrap_err().reason, Reason::Ttl);
}

#[test]
fn a_flipped_byte_in_the_payload_fails_the_signature() {
    let text = String::from_utf8(signed().to_bytes()).unwrap().replacen("fix the parser", "fix the parses", 1);
    let err = verify(text.as_bytes()).unwrap_err();
    assert_eq!(err.reason, Reason::Signature);
    assert!(err.to_string().starts_with("signature: "));
}

#[test]
fn another_key_in_from_fails_the_signature() {
    let mut obj = wire_value();
    obj.insert("from".into(), json!(hex::encode(bob().public_key())));
    assert_eq!(reason_of(&serde_json::to_vec(&obj).unwrap()), Reason::Signature);
}

#[test]
fn a_from_that_is_not_a_curve_point_fails_the_signature() {
    // y = 2 is not on the curve.
    let mut bad_point = [0u8; 32];
    bad_point[0] = 2;
    assert!(PublicKey::from_bytes(&bad_point).is_err());
    let mut obj = wire_value();
    obj.insert("from".into(), json!(hex::encode(bad_point)));
    assert_eq!(reason_of(&serde_json::to_vec(&obj).unwrap()), Reason::Signature);
}

#[test]
fn cheaper_checks_win_over_dearer_ones() {
    // Expired, too many hops and a bad signature: hops is checked first.
    let mut obj = wire_value();
    obj.insert("hop_count".into(), json!(9));
    obj.insert("ts".into(), json!(1));
    assert_eq!(reason_of(&serde_json::to_vec(&obj).unwrap()), Reason::Hops);
    // Bad hex beats an unknown field.
    obj.insert("zzz".into(), json!(1));
    obj.insert("msg_id".into(), json!("XYZ"));
    assert_eq!(reason_of(&serde_json::to_vec(&obj).unwrap()), Reason::Malformed);
}

#[test]
fn a_control_character_escape_spelled_in_uppercase_is_the_same_message() {
    let mut payload = meta_payload();
    payload["content"]["text"] = json!("tab\u{1f}end");
    let env = sign_meta(payload).unwrap();
    let wire = String::from_utf8(env.to_bytes()).unwrap();
    assert!(wire.contains("\\u001f"));
    let respelled = wire.replacen("\\u001f", "\\u001F", 1);
    assert_eq!(verify(respelled.as_bytes()).unwrap(), env);
    assert_eq!(message_id(respelled.as_bytes()), env.message_id());
}

// --- signing, forwarding, ids ---------------------------------------------

#[test]
fn signing_refuses_floats_and_bad_msg_ids_as_malformed() {
    let mut payload = meta_payload();
    payload["content"]["parameters"]["load"] = json!(0.5);
    assert_eq!(sign_meta(payload).unwrap_err().reason, Reason::Malformed);
    let err = Envelope::sign(&alice(), "meta_msg", "bzzz/meta/issue/o/r/1", "n", "ABC", 1, NOW, 60, 0, meta_payload());
    assert_eq!(err.unwrap_err().reason, Reason::Malformed);
    let mut deep = json!({});
    for _ in 0..MAX_DEPTH {
        deep = json!({ "d": deep });
    }
    let mut payload = meta_payload();
    payload["content"]["parameters"] = deep;
    assert_eq!(sign_meta(payload).unwrap_err().reason, Reason::Malformed);
}

#[test]
fn a_relay_forwards_with_one_more_hop_under_its_own_signature() {
    let env = signed();
    let relayed = env.forward(&bob(), &Limits::default()).unwrap();
    assert_eq!(relayed.hop_count(), 1);
    assert_eq!(relayed.sender(), &bob().public_key());
    assert_eq!((relayed.msg_id(), relayed.payload(), relayed.node_id()), (env.msg_id(), env.payload(), env.node_id()));
    assert_eq!((relayed.seq(), relayed.ts_ms(), relayed.ttl()), (env.seq(), env.ts_ms(), env.ttl()));
    assert_eq!(verify(&relayed.to_bytes()).unwrap(), relayed);
    assert_ne!(relayed.message_id(), env.message_id());
}

#[test]
fn a_relay_refuses_to_forward_past_max_hops() {
    let limits = Limits::default();
    let mut env = signed();
    for hop in 1..=limits.max_hops {
        env = env.forward(&bob(), &limits).unwrap();
        assert_eq!(env.hop_count(), hop);
    }
    assert_eq!(env.forward(&bob(), &limits).unwrap_err().reason, Reason::Hops);
    let at_max =
        Envelope::sign(&alice(), "meta_msg", "bzzz/meta/issue/o/r/1", "n", MSG_ID, 1, NOW, 60, 255, meta_payload());
    assert_eq!(at_max.unwrap().forward(&bob(), &Limits { max_hops: 255, ..limits }).unwrap_err().reason, Reason::Hops);
}

#[test]
fn the_message_id_is_twenty_bytes_of_the_hash_of_the_canonical_wire_bytes() {
    let env = signed();
    let full = crypto::hash(&[&env.to_bytes()]);
    assert_eq!(env.message_id(), full[..20]);
    assert_eq!(message_id(&env.to_bytes()), env.message_id());
    assert_eq!(message_id(b"not json"), crypto::hash(&[b"not json"])[..20]);
}

#[test]
fn a_copy_with_a_corrupted_signature_gets_another_message_id() {
    let wire = String::from_utf8(signed().to_bytes()).unwrap();
    let sig_start = wire.find("\"sig\":\"").unwrap() + 7;
    let mut bytes = wire.into_bytes();
    bytes[sig_start] = if bytes[sig_start] == b'0' { b'1' } else { b'0' };
    assert_ne!(message_id(&bytes), signed().message_id());
    assert_eq!(reason_of(&bytes), Reason::Signature);
}

#[test]
fn fresh_msg_ids_are_random_lowercase_hex() {
    let (a, b) = (new_msg_id(), new_msg_id());
    assert!(is_lower_hex(&a, 32) && is_lower_hex(&b, 32));
    assert_ne!(a, b);
}

#[test]
fn every_reason_has_a_distinct_lowercase_name() {
    let names: std::collections::HashSet<_> = REJECT_REASONS.iter().collect();
    assert_eq!(names.len(), Reason::ALL.len());
    for (reason, name) in Reason::ALL.iter().zip(REJECT_REASONS) {
        assert_eq!(reason.as_str(), name);
        assert_eq!(name, name.to_lowercase());
    }
}

// --- the gate -------------------------------------------------------------

#[test]
fn the_gate_admits_once_and_then_says_duplicate() {
    let gate = Gate::new(Limits::default(), 100);
    let bytes = signed().to_bytes();
    assert!(gate.admit(&bytes, NOW).is_ok());
    assert_eq!(gate.admit(&bytes, NOW + 1).unwrap_err().reason, Reason::Duplicate);
    // A relayed copy has another signer but the same msg_id.
    let relayed = signed().forward(&bob(), &Limits::default()).unwrap();
    assert_eq!(gate.admit(&relayed.to_bytes(), NOW + 2).unwrap_err().reason, Reason::Duplicate);
}

#[test]
fn threads_sharing_a_gate_admit_a_message_once() {
    let gate = Gate::new(Limits::default(), 100);
    let bytes = signed().to_bytes();
    let batch = [bytes.as_slice(), bytes.as_slice()];
    let admitted: usize = std::thread::scope(|s| {
        let singles: Vec<_> = (0..4).map(|_| s.spawn(|| usize::from(gate.admit(&bytes, NOW).is_ok()))).collect();
        let batches: Vec<_> =
            (0..4).map(|_| s.spawn(|| gate.admit_batch(&batch, NOW).iter().filter(|r| r.is_ok()).count())).collect();
        singles.into_iter().chain(batches).map(|h| h.join().unwrap()).sum()
    });
    assert_eq!((admitted, gate.len()), (1, 1));
}

#[test]
fn a_forged_message_cannot_claim_a_msg_id_in_the_gate() {
    let gate = Gate::new(Limits::default(), 100);
    let good = signed().to_bytes();
    let forged = String::from_utf8(good.clone()).unwrap().replacen("fix the parser", "rm -rf /", 1);
    assert_eq!(gate.admit(forged.as_bytes(), NOW).unwrap_err().reason, Reason::Signature);
    assert_eq!(gate.len(), 0);
    assert!(gate.admit(&good, NOW).is_ok());
}

#[test]
fn a_gate_entry_lasts_exactly_as_long_as_its_message() {
    let gate = Gate::new(Limits::default(), 100);
    let bytes = signed().to_bytes();
    assert!(gate.admit(&bytes, NOW).is_ok());
    assert_eq!(gate.admit(&bytes, NOW + 60_000).unwrap_err().reason, Reason::Duplicate);
    assert_eq!(gate.admit(&bytes, NOW + 60_001).unwrap_err().reason, Reason::Ttl);
    // A new message inserted later purges the old entry.
    let other = Envelope::sign(
        &alice(),
        "meta_msg",
        "bzzz/meta/issue/o/r/1",
        "n",
        HEX32_A,
        6,
        NOW + 60_000,
        60,
        0,
        meta_payload(),
    );
    assert!(gate.admit(&other.unwrap().to_bytes(), NOW + 60_001).is_ok());
    assert_eq!(gate.len(), 1);
}

// --- properties -----------------------------------------------------------

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[\\x00-\\x1f\"\\\\/\\x7f é\u{2028}😀]{0,8}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_single_flipped_byte_of_a_signed_envelope_is_rejected(index in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let mut bytes = signed().to_bytes();
        let i = index.index(bytes.len());
        bytes[i] ^= mask;
        prop_assert!(verify(&bytes).is_err());
    }

    #[test]
    fn re_encoding_a_parsed_envelope_is_stable(extra in json_value(), text in any::<String>(), shuffle in any::<bool>()) {
        let mut payload = meta_payload();
        payload["content"]["parameters"]["extra"] = extra;
        payload["content"]["text"] = Value::String(text.chars().take(200).collect());
        let env = sign_meta(payload).unwrap();
        let wire = env.to_bytes();
        let back = verify(&wire).unwrap();
        prop_assert_eq!(back.to_bytes(), wire.clone());
        prop_assert_eq!(back.signed_bytes(), env.signed_bytes());
        let value = parse_strict(&wire).unwrap();
        prop_assert_eq!(canonical_json(&value), wire.clone());
        if shuffle {
            let pretty = serde_json::to_vec_pretty(&value).unwrap();
            prop_assert_eq!(verify(&pretty).unwrap().to_bytes(), wire);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_are_never_admitted(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        prop_assert!(verify(&bytes).is_err());
        let _ = message_id(&bytes);
    }
}

fn numbered(i: u8, key_pair: &KeyPair) -> Vec<u8> {
    let msg_id = format!("{:032x}", u128::from(i) + 1);
    Envelope::sign(
        key_pair,
        "meta_msg",
        "bzzz/meta/issue/o/r/1",
        "walnut",
        &msg_id,
        i.into(),
        NOW,
        60,
        0,
        meta_payload(),
    )
    .unwrap()
    .to_bytes()
}

#[test]
fn a_batch_refuses_exactly_the_bad_ones_and_admits_the_rest() {
    let mut items: Vec<Vec<u8>> = (0..9).map(|i| numbered(i, &if i % 2 == 0 { alice() } else { bob() })).collect();
    let sig_at = items[4].windows(7).position(|w| w == b"\"sig\":\"").unwrap() + 7;
    items[4][sig_at] = if items[4][sig_at] == b'0' { b'1' } else { b'0' };
    items[6] = b"not json".to_vec();
    items.push(items[2].clone());
    let refs: Vec<&[u8]> = items.iter().map(|v| v.as_slice()).collect();
    let gate = Gate::new(Limits::default(), 100);
    let reasons: Vec<Option<Reason>> =
        gate.admit_batch(&refs, NOW).into_iter().map(|r| r.err().map(|e| e.reason)).collect();
    let mut expected = vec![None; 10];
    expected[4] = Some(Reason::Signature);
    expected[6] = Some(Reason::Malformed);
    expected[9] = Some(Reason::Duplicate);
    assert_eq!(reasons, expected);
    assert_eq!(gate.keys().len(), 2, "two senders, two decoded keys");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_batch_agrees_with_one_by_one(flips in prop::collection::vec((any::<bool>(), 0usize..700), 1..8)) {
        let mut items: Vec<Vec<u8>> = Vec::new();
        for (i, (flip, at)) in flips.iter().enumerate() {
            let mut bytes = numbered(i as u8, &if i % 3 == 0 { bob() } else { alice() });
            if *flip {
                let at = at % bytes.len();
                bytes[at] ^= 0x01;
            }
            items.push(bytes);
        }
        let refs: Vec<&[u8]> = items.iter().map(|v| v.as_slice()).collect();
        let keys = KeyCache::new(16);
        let batch: Vec<_> = parse_and_verify_batch(&refs, &Limits::default(), NOW, &keys)
            .into_iter().map(|r| r.map_err(|e| e.reason)).collect();
        let single: Vec<_> = refs.iter().map(|b| verify(b).map_err(|e| e.reason)).collect();
        prop_assert_eq!(batch, single);
    }
}

#[test]
fn the_key_cache_stays_bounded() {
    let keys = KeyCache::new(3);
    for seed in 1..=10u8 {
        let key = KeyPair::from_seed(&[seed; 32]).unwrap().public_key();
        assert!(keys.get(&key).is_some());
        assert!(keys.len() <= 3);
    }
}

#[test]
fn a_peer_id_is_the_identity_multihash_of_the_protobuf_key() {
    let key = alice().public_key();
    let id = peer_id(&key);
    assert_eq!(id[..6], [0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
    assert_eq!(id[6..], key);
}

#[test]
fn the_gate_admits_a_message_only_from_its_signer() {
    let gate = Gate::new(Limits::default(), 100);
    let bytes = signed().to_bytes();
    let bobs_peer = peer_id(&bob().public_key());
    let err = gate.admit_from(&bytes, &bobs_peer, NOW).unwrap_err();
    assert_eq!(err.reason, Reason::Source);
    // Refused for its source, it claimed no msg_id: from the signer it is admitted once.
    let alices_peer = peer_id(&alice().public_key());
    assert!(gate.admit_from(&bytes, &alices_peer, NOW).is_ok());
    assert_eq!(gate.admit_from(&bytes, &alices_peer, NOW).unwrap_err().reason, Reason::Duplicate);
}

#[test]
fn a_forged_signature_is_blamed_on_the_signature_not_the_source() {
    let gate = Gate::new(Limits::default(), 100);
    let mut wire = wire_value();
    wire.insert("seq".into(), json!(6));
    let forged = serde_json::to_vec(&wire).unwrap();
    let alices_peer = peer_id(&alice().public_key());
    assert_eq!(gate.admit_from(&forged, &alices_peer, NOW).unwrap_err().reason, Reason::Signature);
}

// --- discussion safeguards ------------------------------------------------

const ISSUE: &str = "bzzz/meta/issue/o/r/1";

/// A distinct signer for every `n`.
fn signer(n: u32) -> KeyPair {
    let mut seed = [0xa5u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    KeyPair::from_seed(&seed).unwrap()
}

/// A new message (fresh `msg_id`) of `samples()[sample]`'s type, on `topic` if given.
fn message(key: &KeyPair, sample: usize, topic: Option<&str>, ts: u64) -> Vec<u8> {
    let (kind, default_topic, payload) = samples().swap_remove(sample);
    let topic = topic.unwrap_or(default_topic);
    Envelope::sign(key, kind, topic, "walnut", &new_msg_id(), 1, ts, 60, 0, payload).unwrap().to_bytes()
}

fn capabilities_from(key: &KeyPair) -> Vec<u8> {
    message(key, 0, None, NOW)
}

fn escalation_from(key: &KeyPair) -> Vec<u8> {
    message(key, 4, None, NOW)
}

fn meta_from(key: &KeyPair, topic: &str, ts: u64) -> Vec<u8> {
    message(key, 3, Some(topic), ts)
}

/// A help request (`response`: a response) about `request_id`.
fn help_from(key: &KeyPair, response: bool, request_id: &str) -> Vec<u8> {
    let (kind, topic, mut payload) = samples().swap_remove(if response { 2 } else { 1 });
    payload["request_id"] = json!(request_id);
    Envelope::sign(key, kind, topic, "walnut", &new_msg_id(), 1, NOW, 60, 0, payload).unwrap().to_bytes()
}

fn guarded(safeguards: Safeguards) -> Gate {
    Gate::with_safeguards(Limits::default(), 100_000, safeguards).unwrap()
}

fn outcome(gate: &Gate, bytes: &[u8], now: u64) -> Result<(), Reason> {
    gate.admit(bytes, now).map(|_| ()).map_err(|e| e.reason)
}

fn admitted(gate: &Gate, items: &[Vec<u8>], now: u64) -> usize {
    items.iter().filter(|b| gate.admit(b, now).is_ok()).count()
}

#[test]
fn safeguards_have_the_documented_defaults_and_append_three_reasons() {
    let s = Safeguards::default();
    assert_eq!(
        (s.sender_rate, s.sender_burst, s.max_participants, s.discussion_ttl, s.max_discussion_messages, s.capacity),
        (5.0, 20, 16, 3600, 500, 10_000)
    );
    assert_eq!(REJECT_REASONS[9..], ["rate", "closed", "participants"]);
}

#[test]
fn safeguards_that_make_no_sense_are_refused() {
    let d = Safeguards::default();
    let bad = [
        Safeguards { sender_rate: 0.0, ..d },
        Safeguards { sender_rate: -1.0, ..d },
        Safeguards { sender_rate: f64::NAN, ..d },
        Safeguards { sender_rate: f64::INFINITY, ..d },
        Safeguards { sender_burst: 0, ..d },
        Safeguards { max_participants: 0, ..d },
        Safeguards { discussion_ttl: 0, ..d },
        Safeguards { max_discussion_messages: 0, ..d },
        Safeguards { capacity: 0, ..d },
    ];
    for s in bad {
        assert!(s.check().is_err(), "{s:?}");
        assert!(Gate::with_safeguards(Limits::default(), 10, s).is_err(), "{s:?}");
    }
    let least = Safeguards {
        sender_rate: f64::MIN_POSITIVE,
        sender_burst: 1,
        max_participants: 1,
        discussion_ttl: 1,
        max_discussion_messages: 1,
        capacity: 1,
    };
    assert_eq!(least.check(), Ok(()));
}

#[test]
fn a_gate_without_safeguards_admits_a_flood() {
    let gate = Gate::new(Limits::default(), 1000);
    let flood: Vec<Vec<u8>> = (0..200).map(|_| meta_from(&alice(), ISSUE, NOW)).collect();
    assert_eq!(admitted(&gate, &flood, NOW), 200);
}

#[test]
fn a_signer_gets_its_burst_at_once_then_its_rate() {
    let gate = guarded(Safeguards::default());
    let flood = |n: usize| -> Vec<Vec<u8>> { (0..n).map(|_| escalation_from(&alice())).collect() };
    assert_eq!(admitted(&gate, &flood(200), NOW), 20);
    assert_eq!(outcome(&gate, &escalation_from(&alice()), NOW), Err(Reason::Rate));
    // A refusal takes nothing: a second later, exactly the rate's 5 tokens.
    assert_eq!(admitted(&gate, &flood(200), NOW + 1000), 5);
    assert_eq!(admitted(&gate, &flood(200), NOW + 1200), 1);
    // Refilling stops at the burst.
    assert_eq!(admitted(&gate, &flood(200), NOW + 59_000), 20);
    // Another signer has its own bucket.
    assert_eq!(admitted(&gate, &(0..30).map(|_| escalation_from(&bob())).collect::<Vec<_>>(), NOW), 20);
}

#[test]
fn refills_add_up_exactly_where_floating_point_would_not() {
    // 0.1 added ten times is 0.9999999999999999 in f64: not a token.
    let gate = guarded(Safeguards { sender_rate: 0.1, sender_burst: 1, ..Safeguards::default() });
    assert!(gate.admit(&escalation_from(&alice()), NOW).is_ok());
    for second in 1..10 {
        assert_eq!(outcome(&gate, &escalation_from(&alice()), NOW + second * 1000), Err(Reason::Rate));
    }
    assert!(gate.admit(&escalation_from(&alice()), NOW + 10_000).is_ok());
}

#[test]
fn a_clock_that_goes_back_refills_nothing() {
    let gate = guarded(Safeguards { sender_burst: 1, ..Safeguards::default() });
    assert!(gate.admit(&escalation_from(&alice()), NOW + 10_000).is_ok());
    assert_eq!(outcome(&gate, &escalation_from(&alice()), NOW), Err(Reason::Rate));
    assert_eq!(outcome(&gate, &escalation_from(&alice()), NOW + 10_100), Err(Reason::Rate));
    assert!(gate.admit(&escalation_from(&alice()), NOW + 10_200).is_ok());
}

#[test]
fn capabilities_are_never_rate_limited_nor_remembered() {
    let gate = guarded(Safeguards { sender_burst: 1, ..Safeguards::default() });
    let flood: Vec<Vec<u8>> = (0..50).map(|_| capabilities_from(&alice())).collect();
    assert_eq!(admitted(&gate, &flood, NOW), 50);
    assert_eq!(gate.remembered(), (0, 0));
    // Nor do they spend the signer's tokens for anything else.
    assert!(gate.admit(&escalation_from(&alice()), NOW).is_ok());
}

#[test]
fn escalations_are_rate_limited_but_belong_to_no_discussion() {
    let gate = guarded(Safeguards { sender_burst: 2, ..Safeguards::default() });
    let env = verify(&escalation_from(&alice())).unwrap();
    assert_eq!(env.discussion_key(), None);
    assert!(gate.admit(&escalation_from(&alice()), NOW).is_ok());
    assert!(gate.admit(&escalation_from(&alice()), NOW).is_ok());
    assert_eq!(outcome(&gate, &escalation_from(&alice()), NOW), Err(Reason::Rate));
    assert_eq!(gate.remembered(), (1, 0));
}

#[test]
fn each_type_has_its_discussion_key() {
    let key = |bytes: Vec<u8>| verify(&bytes).unwrap().discussion_key();
    assert_eq!(key(capabilities_from(&alice())), None);
    assert_eq!(key(meta_from(&alice(), ISSUE, NOW)), Some(ISSUE.to_owned()));
    assert_eq!(key(help_from(&alice(), false, HEX32_A)), Some(format!("help:{HEX32_A}")));
    assert_eq!(key(help_from(&alice(), true, HEX32_A)), Some(format!("help:{HEX32_A}")));
    assert_eq!(key(escalation_from(&alice())), None);
}

#[test]
fn a_help_request_and_its_responses_are_one_discussion_keyed_by_request_id() {
    let gate = guarded(Safeguards { max_discussion_messages: 2, ..Safeguards::default() });
    let other = "ffffffffffffffffffffffffffffffff";
    assert!(gate.admit(&help_from(&alice(), false, HEX32_A), NOW).is_ok());
    assert!(gate.admit(&help_from(&bob(), true, HEX32_A), NOW).is_ok());
    assert_eq!(outcome(&gate, &help_from(&signer(1), true, HEX32_A), NOW), Err(Reason::Closed));
    assert!(gate.admit(&help_from(&signer(1), false, other), NOW).is_ok());
    let state = gate.discussion(&format!("help:{HEX32_A}"), NOW).unwrap();
    assert_eq!((state.messages, state.participants, state.closed), (2, 2, true));
    assert_eq!(gate.discussion(&format!("help:{other}"), NOW).unwrap().messages, 1);
    assert_eq!(gate.discussion(HEX32_A, NOW), None);
}

#[test]
fn a_discussion_closes_after_its_ttl_and_stays_closed() {
    let gate = guarded(Safeguards { discussion_ttl: 10, ..Safeguards::default() });
    assert!(gate.admit(&meta_from(&alice(), ISSUE, NOW), NOW).is_ok());
    let state = gate.discussion(ISSUE, NOW).unwrap();
    assert_eq!((state.opened_ms, state.closes_ms, state.closed), (NOW, NOW + 10_000, false));
    assert!(gate.admit(&meta_from(&bob(), ISSUE, NOW + 10_000), NOW + 10_000).is_ok());
    for later in [NOW + 10_001, NOW + 30_000, NOW + 10_000_000] {
        assert_eq!(outcome(&gate, &meta_from(&bob(), ISSUE, later), later), Err(Reason::Closed));
        assert!(gate.discussion(ISSUE, later).unwrap().closed);
    }
    // Another issue is another discussion.
    assert!(gate.admit(&meta_from(&bob(), "bzzz/meta/issue/o/r/2", NOW + 30_000), NOW + 30_000).is_ok());
}

#[test]
fn a_discussion_opens_at_the_earlier_of_its_first_ts_and_now() {
    let gate = guarded(Safeguards::default());
    let (late, early) = ("bzzz/meta/issue/o/r/2", "bzzz/meta/issue/o/r/3");
    assert!(gate.admit(&meta_from(&alice(), late, NOW - 5000), NOW).is_ok());
    assert!(gate.admit(&meta_from(&alice(), early, NOW + 20_000), NOW).is_ok());
    assert_eq!(gate.discussion(late, NOW).unwrap().opened_ms, NOW - 5000);
    assert_eq!(gate.discussion(early, NOW).unwrap().closes_ms, NOW + 3_600_000);
}

#[test]
fn a_discussion_closes_at_its_message_cap_and_stays_closed() {
    let gate = guarded(Safeguards { max_discussion_messages: 3, ..Safeguards::default() });
    for i in 0..3 {
        assert!(gate.admit(&meta_from(&signer(i), ISSUE, NOW), NOW).is_ok());
    }
    assert!(gate.discussion(ISSUE, NOW).unwrap().closed);
    for (i, now) in [(0, NOW), (7, NOW + 1000), (0, NOW + 50_000)] {
        assert_eq!(outcome(&gate, &meta_from(&signer(i), ISSUE, now), now), Err(Reason::Closed));
    }
    assert_eq!(gate.discussion(ISSUE, NOW).unwrap().messages, 3);
}

#[test]
fn a_discussion_refuses_one_participant_too_many_but_not_those_already_in() {
    let gate = guarded(Safeguards { max_participants: 2, ..Safeguards::default() });
    assert!(gate.admit(&meta_from(&alice(), ISSUE, NOW), NOW).is_ok());
    assert!(gate.admit(&meta_from(&bob(), ISSUE, NOW), NOW).is_ok());
    assert_eq!(outcome(&gate, &meta_from(&signer(1), ISSUE, NOW), NOW), Err(Reason::Participants));
    assert!(gate.admit(&meta_from(&alice(), ISSUE, NOW), NOW).is_ok());
    assert!(gate.admit(&meta_from(&signer(1), "bzzz/meta/issue/o/r/2", NOW), NOW).is_ok());
    let state = gate.discussion(ISSUE, NOW).unwrap();
    assert_eq!((state.messages, state.participants), (3, 2));
}

#[test]
fn dedup_and_source_come_before_the_rate_and_take_no_token() {
    let gate = guarded(Safeguards { sender_burst: 2, ..Safeguards::default() });
    let first = escalation_from(&alice());
    assert!(gate.admit(&first, NOW).is_ok());
    assert_eq!(outcome(&gate, &first, NOW), Err(Reason::Duplicate));
    let bobs_peer = peer_id(&bob().public_key());
    let second = escalation_from(&alice());
    assert_eq!(gate.admit_from(&second, &bobs_peer, NOW).unwrap_err().reason, Reason::Source);
    assert!(gate.admit_from(&second, &peer_id(&alice().public_key()), NOW).is_ok());
    assert_eq!(outcome(&gate, &escalation_from(&alice()), NOW), Err(Reason::Rate));
}

#[test]
fn the_rate_comes_before_closed_and_closed_before_participants() {
    let safeguards = Safeguards { sender_burst: 1, max_participants: 1, discussion_ttl: 10, ..Safeguards::default() };
    let gate = guarded(safeguards);
    assert!(gate.admit(&meta_from(&alice(), ISSUE, NOW), NOW).is_ok());
    // Alice has no token left and the discussion has closed: the rate is checked first.
    let later = NOW + 10_001;
    assert_eq!(outcome(&gate, &meta_from(&alice(), ISSUE, later), NOW + 100), Err(Reason::Rate));
    // Bob would be a second participant in a closed discussion: closed is checked first.
    assert_eq!(outcome(&gate, &meta_from(&bob(), ISSUE, later), later), Err(Reason::Closed));
    // Open but full of participants.
    assert!(gate.admit(&meta_from(&alice(), "bzzz/meta/issue/o/r/2", later), later).is_ok());
    assert_eq!(
        outcome(&gate, &meta_from(&signer(1), "bzzz/meta/issue/o/r/2", later), later),
        Err(Reason::Participants)
    );
}

#[test]
fn a_message_refused_by_a_safeguard_keeps_its_msg_id_and_its_token() {
    let gate = guarded(Safeguards { sender_burst: 2, max_participants: 1, ..Safeguards::default() });
    assert!(gate.admit(&meta_from(&alice(), ISSUE, NOW), NOW).is_ok());
    let bobs = meta_from(&bob(), ISSUE, NOW);
    assert_eq!(outcome(&gate, &bobs, NOW), Err(Reason::Participants));
    // Replayed later, or relayed by someone else, it is a duplicate.
    assert_eq!(outcome(&gate, &bobs, NOW + 1000), Err(Reason::Duplicate));
    let relayed = verify(&bobs).unwrap().forward(&signer(1), &Limits::default()).unwrap();
    assert_eq!(outcome(&gate, &relayed.to_bytes(), NOW), Err(Reason::Duplicate));
    // The refusal took one of Bob's two tokens.
    assert!(gate.admit(&escalation_from(&bob()), NOW).is_ok());
    assert_eq!(outcome(&gate, &escalation_from(&bob()), NOW), Err(Reason::Rate));
    assert_eq!(gate.discussion(ISSUE, NOW).unwrap().participants, 1);
}

#[test]
fn a_batch_applies_the_safeguards_in_order() {
    let gate = guarded(Safeguards { sender_burst: 3, ..Safeguards::default() });
    let items: Vec<Vec<u8>> = (0..5).map(|_| meta_from(&alice(), ISSUE, NOW)).collect();
    let refs: Vec<&[u8]> = items.iter().map(|v| v.as_slice()).collect();
    let reasons: Vec<Option<Reason>> =
        gate.admit_batch(&refs, NOW).into_iter().map(|r| r.err().map(|e| e.reason)).collect();
    assert_eq!(reasons, [None, None, None, Some(Reason::Rate), Some(Reason::Rate)]);
    assert_eq!(gate.discussion(ISSUE, NOW).unwrap().messages, 3);
}

#[test]
fn clearing_the_gate_forgets_signers_and_discussions() {
    let gate = guarded(Safeguards { sender_burst: 1, max_discussion_messages: 1, ..Safeguards::default() });
    let first = meta_from(&alice(), ISSUE, NOW);
    assert!(gate.admit(&first, NOW).is_ok());
    assert_eq!(outcome(&gate, &meta_from(&alice(), ISSUE, NOW), NOW), Err(Reason::Rate));
    gate.clear();
    assert_eq!((gate.remembered(), gate.len()), ((0, 0), 0));
    assert!(gate.admit(&first, NOW).is_ok());
}

#[test]
fn memory_stays_bounded_at_capacity() {
    let gate = guarded(Safeguards { capacity: 10, ..Safeguards::default() });
    for i in 0..30 {
        let topic = format!("bzzz/meta/issue/o/r/{}", i + 1);
        assert!(gate.admit(&meta_from(&signer(i), &topic, NOW), NOW + u64::from(i)).is_ok());
        let (signers, discussions) = gate.remembered();
        assert!(signers <= 10 && discussions <= 10);
    }
    assert_eq!(gate.remembered(), (10, 10));
    assert!(gate.discussion("bzzz/meta/issue/o/r/1", NOW).is_none());
    assert!(gate.discussion("bzzz/meta/issue/o/r/30", NOW).is_some());
}

#[test]
fn at_capacity_the_signer_refilled_longest_ago_is_forgotten() {
    let safeguards = Safeguards { sender_rate: 0.001, sender_burst: 1, capacity: 2, ..Safeguards::default() };
    let gate = guarded(safeguards);
    let (carol, dave) = (signer(1), signer(2));
    assert!(gate.admit(&escalation_from(&alice()), NOW).is_ok());
    assert!(gate.admit(&escalation_from(&bob()), NOW + 1).is_ok());
    // Alice's refused message refills her bucket (by nothing) at NOW + 2: now Bob's is the oldest.
    assert_eq!(outcome(&gate, &escalation_from(&alice()), NOW + 2), Err(Reason::Rate));
    assert!(gate.admit(&escalation_from(&carol), NOW + 3).is_ok());
    assert_eq!(outcome(&gate, &escalation_from(&alice()), NOW + 4), Err(Reason::Rate));
    // Bob was forgotten, so he starts full again; making room for him forgets Carol.
    assert!(gate.admit(&escalation_from(&bob()), NOW + 5).is_ok());
    assert!(gate.admit(&escalation_from(&carol), NOW + 6).is_ok());
    // Of equal refill times, the signer whose last message came first goes: Carol, not Bob.
    assert_eq!(outcome(&gate, &escalation_from(&bob()), NOW + 6), Err(Reason::Rate));
    assert!(gate.admit(&escalation_from(&dave), NOW + 6).is_ok());
    assert_eq!(outcome(&gate, &escalation_from(&bob()), NOW + 6), Err(Reason::Rate));
    assert!(gate.admit(&escalation_from(&carol), NOW + 6).is_ok());
    assert_eq!(gate.remembered().0, 2);
}

#[test]
fn at_capacity_the_discussion_with_the_earliest_deadline_is_forgotten() {
    let gate = guarded(Safeguards { capacity: 2, discussion_ttl: 10, ..Safeguards::default() });
    let topic = |n: u32| format!("bzzz/meta/issue/o/r/{n}");
    assert!(gate.admit(&meta_from(&alice(), &topic(1), NOW), NOW).is_ok());
    // Opened later but written earlier: its deadline is the earliest.
    assert!(gate.admit(&meta_from(&alice(), &topic(2), NOW - 5000), NOW + 1).is_ok());
    assert!(gate.admit(&meta_from(&alice(), &topic(3), NOW), NOW + 2).is_ok());
    assert!(gate.discussion(&topic(2), NOW).is_none());
    // Of equal deadlines (both passed), the one opened first goes.
    assert!(gate.admit(&meta_from(&alice(), &topic(4), NOW + 20_000), NOW + 20_000).is_ok());
    assert!(gate.discussion(&topic(1), NOW).is_none());
    assert!(gate.discussion(&topic(3), NOW).is_some());
    // Beyond capacity a forgotten discussion, though it had closed, opens afresh.
    assert!(gate.admit(&meta_from(&alice(), &topic(1), NOW + 20_000), NOW + 20_000).is_ok());
    assert_eq!(gate.discussion(&topic(1), NOW + 20_000).unwrap().opened_ms, NOW + 20_000);
}

/// Messages from 8 signers: `meta_msg`s in 4 issues, a help request and a
/// response about one `request_id`, an escalation and a capabilities. The
/// guards do not dedup, so one envelope can stand for any number of messages.
fn grid() -> &'static [Vec<Envelope>] {
    static GRID: std::sync::OnceLock<Vec<Vec<Envelope>>> = std::sync::OnceLock::new();
    GRID.get_or_init(|| {
        (0..8)
            .map(|who| {
                let key = signer(who);
                let mut row: Vec<Vec<u8>> =
                    (1..=4).map(|issue| meta_from(&key, &format!("bzzz/meta/issue/o/r/{issue}"), NOW)).collect();
                row.extend([help_from(&key, false, HEX32_A), help_from(&key, true, HEX32_A)]);
                row.extend([escalation_from(&key), capabilities_from(&key)]);
                row.iter().map(|bytes| verify(bytes).unwrap()).collect()
            })
            .collect()
    })
}

/// The safeguards written plainly (linear scans), to check [`Guards`] against.
struct GuardsModel {
    safeguards: Safeguards,
    buckets: Vec<ModelBucket>,
    discussions: Vec<ModelDiscussion>,
    generation: u64,
}

struct ModelBucket {
    signer: [u8; PUBLIC_KEY_LEN],
    nanotokens: u64,
    refilled: u64,
    generation: u64,
}

struct ModelDiscussion {
    key: String,
    closes: u64,
    messages: u32,
    participants: Vec<[u8; PUBLIC_KEY_LEN]>,
    generation: u64,
}

impl GuardsModel {
    fn admit(&mut self, env: &Envelope, now: u64) -> Result<(), Reason> {
        let s = self.safeguards;
        if env.message_type() == MessageType::Capabilities {
            return Ok(());
        }
        let signer = *env.sender();
        if !self.buckets.iter().any(|b| b.signer == signer) {
            if self.buckets.len() >= s.capacity {
                let oldest = (0..self.buckets.len())
                    .min_by_key(|&i| (self.buckets[i].refilled, self.buckets[i].generation))
                    .unwrap();
                self.buckets.remove(oldest);
            }
            let full = u64::from(s.sender_burst) * 1_000_000_000;
            self.buckets.push(ModelBucket { signer, nanotokens: full, refilled: now, generation: 0 });
        }
        self.generation += 1;
        let bucket = self.buckets.iter_mut().find(|b| b.signer == signer).unwrap();
        let refill = (s.sender_rate * now.saturating_sub(bucket.refilled) as f64 * 1e6).round() as u64;
        bucket.nanotokens = (bucket.nanotokens + refill).min(u64::from(s.sender_burst) * 1_000_000_000);
        bucket.refilled = bucket.refilled.max(now);
        bucket.generation = self.generation;
        if bucket.nanotokens < 1_000_000_000 {
            return Err(Reason::Rate);
        }
        bucket.nanotokens -= 1_000_000_000;
        let Some(key) = env.discussion_key() else { return Ok(()) };
        if let Some(d) = self.discussions.iter_mut().find(|d| d.key == key) {
            if now > d.closes || d.messages >= s.max_discussion_messages {
                return Err(Reason::Closed);
            }
            if !d.participants.contains(&signer) {
                if d.participants.len() >= s.max_participants as usize {
                    return Err(Reason::Participants);
                }
                d.participants.push(signer);
            }
            d.messages += 1;
            return Ok(());
        }
        if self.discussions.len() >= s.capacity {
            let first = (0..self.discussions.len())
                .min_by_key(|&i| (self.discussions[i].closes, self.discussions[i].generation))
                .unwrap();
            self.discussions.remove(first);
        }
        self.generation += 1;
        let closes = env.ts_ms().min(now) + u64::from(s.discussion_ttl) * 1000;
        let generation = self.generation;
        self.discussions.push(ModelDiscussion { key, closes, messages: 1, participants: vec![signer], generation });
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn the_guards_stay_bounded_and_answer_as_a_plain_model_does(
        capacity in 1usize..5,
        sender_rate in prop::sample::select(vec![0.5, 1.0, 3.0]),
        sender_burst in 1u32..4,
        max_participants in 1u32..4,
        discussion_ttl in 1u32..5,
        max_discussion_messages in 1u32..6,
        ops in proptest::collection::vec((0usize..8, 0usize..8, 0u64..1500), 1..120),
    ) {
        let safeguards =
            Safeguards { sender_rate, sender_burst, max_participants, discussion_ttl, max_discussion_messages, capacity };
        let mut guards = Guards::new(safeguards).unwrap();
        let mut model = GuardsModel { safeguards, buckets: Vec::new(), discussions: Vec::new(), generation: 0 };
        let mut now = NOW;
        for (who, what, step) in ops {
            now += step;
            let env = &grid()[who][what];
            prop_assert_eq!(guards.admit(env, now).map_err(|e| e.reason), model.admit(env, now));
            prop_assert!(guards.signers() <= capacity && guards.discussions() <= capacity);
            prop_assert_eq!((guards.signers(), guards.discussions()), (model.buckets.len(), model.discussions.len()));
        }
        for d in &model.discussions {
            let state = guards.discussion(&d.key, now).unwrap();
            prop_assert_eq!((state.closes_ms, state.messages, state.participants), (d.closes, d.messages, d.participants.len()));
        }
    }
}
