use super::*;
use proptest::prelude::*;
use serde_json::json;

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
    let mut gate = Gate::new(Limits::default(), 100);
    let bytes = signed().to_bytes();
    assert!(gate.admit(&bytes, NOW).is_ok());
    assert_eq!(gate.admit(&bytes, NOW + 1).unwrap_err().reason, Reason::Duplicate);
    // A relayed copy has another signer but the same msg_id.
    let relayed = signed().forward(&bob(), &Limits::default()).unwrap();
    assert_eq!(gate.admit(&relayed.to_bytes(), NOW + 2).unwrap_err().reason, Reason::Duplicate);
}

#[test]
fn a_forged_message_cannot_claim_a_msg_id_in_the_gate() {
    let mut gate = Gate::new(Limits::default(), 100);
    let good = signed().to_bytes();
    let forged = String::from_utf8(good.clone()).unwrap().replacen("fix the parser", "rm -rf /", 1);
    assert_eq!(gate.admit(forged.as_bytes(), NOW).unwrap_err().reason, Reason::Signature);
    assert_eq!(gate.seen.len(), 0);
    assert!(gate.admit(&good, NOW).is_ok());
}

#[test]
fn a_gate_entry_lasts_exactly_as_long_as_its_message() {
    let mut gate = Gate::new(Limits::default(), 100);
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
    assert_eq!(gate.seen.len(), 1);
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
    let mut gate = Gate::new(Limits::default(), 100);
    let reasons: Vec<Option<Reason>> =
        gate.admit_batch(&refs, NOW).into_iter().map(|r| r.err().map(|e| e.reason)).collect();
    let mut expected = vec![None; 10];
    expected[4] = Some(Reason::Signature);
    expected[6] = Some(Reason::Malformed);
    expected[9] = Some(Reason::Duplicate);
    assert_eq!(reasons, expected);
    assert_eq!(gate.keys.len(), 2, "two senders, two decoded keys");
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
    let mut gate = Gate::new(Limits::default(), 100);
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
    let mut gate = Gate::new(Limits::default(), 100);
    let mut wire = wire_value();
    wire.insert("seq".into(), json!(6));
    let forged = serde_json::to_vec(&wire).unwrap();
    let alices_peer = peer_id(&alice().public_key());
    assert_eq!(gate.admit_from(&forged, &alices_peer, NOW).unwrap_err().reason, Reason::Signature);
}
