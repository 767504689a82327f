//! Strict JSON in, canonical JSON out (the rules are in the parent module's docs).

use std::fmt;
use std::io::Write as _;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::{reject, Map, Reason, Rejected, Value};
use crate::crypto;

/// Deepest nesting of arrays and objects accepted, the envelope object being 1.
pub const MAX_DEPTH: usize = 32;
/// Bytes of a gossip message id.
pub const MESSAGE_ID_LEN: usize = 20;

/// A serde seed that builds a `Value` while refusing floats, duplicate keys and
/// deep nesting; objects come out with their keys sorted (the canonical order).
#[derive(Clone, Copy)]
pub(super) struct Strict {
    depth: usize,
}

impl Strict {
    fn nest<E: de::Error>(self) -> Result<Strict, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(Strict { depth: self.depth + 1 })
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
        Err(E::custom("numbers must be integers in -2^63..2^64 (no fraction, exponent or -0)"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nest()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nest()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(inner)?;
            match out.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                serde_json::map::Entry::Occupied(slot) => {
                    return Err(de::Error::custom(format_args!("duplicate key {:?}", slot.key())));
                }
            }
        }
        out.sort_keys();
        Ok(Value::Object(out))
    }
}

/// Parse accepted JSON (see the module docs) into a `Value` whose objects have
/// sorted keys.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, Rejected> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict { depth: 0 }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| Rejected::new(Reason::Malformed, format!("not accepted JSON: {e}")))?;
    Ok(value)
}

/// Check a `Value` built in code as [`parse_strict`] checks text (no floats,
/// not too deep, starting at nesting `depth`), and sort its objects' keys.
pub(super) fn strict_value(value: &mut Value, depth: usize) -> Result<(), Rejected> {
    fn walk(v: &Value, depth: usize) -> Result<(), Rejected> {
        match v {
            Value::Number(n) if n.is_f64() => {
                reject(Reason::Malformed, "numbers must be integers in -2^63..2^64 (no floats)")
            }
            Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => {
                reject(Reason::Malformed, format!("nested deeper than {MAX_DEPTH} levels"))
            }
            Value::Array(items) => items.iter().try_for_each(|x| walk(x, depth + 1)),
            Value::Object(map) => map.values().try_for_each(|x| walk(x, depth + 1)),
            _ => Ok(()),
        }
    }
    walk(value, depth)?;
    value.sort_all_objects();
    Ok(())
}

pub(super) fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        if short.is_empty() {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

pub(super) fn write_u64(out: &mut Vec<u8>, n: u64) {
    let _ = write!(out, "{n}");
}

/// Write `canon(value)`. Objects are written in their stored order, which every
/// `Value` in this module keeps sorted.
pub(super) fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Integers only (checked on the way in); Display writes them in canonical form.
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_value(out, v);
            }
            out.push(b'}');
        }
    }
}

/// `canon(value)` of a `Value` whose objects have sorted keys (as
/// [`parse_strict`] returns them).
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, value);
    out
}

/// The gossipsub message id of raw envelope bytes (see the module docs).
pub fn message_id(bytes: &[u8]) -> [u8; MESSAGE_ID_LEN] {
    match parse_strict(bytes) {
        Ok(value) => truncated_hash(&canonical_json(&value)),
        Err(_) => truncated_hash(bytes),
    }
}

pub(super) fn truncated_hash(bytes: &[u8]) -> [u8; MESSAGE_ID_LEN] {
    let full = crypto::hash(&[bytes]);
    let mut id = [0u8; MESSAGE_ID_LEN];
    id.copy_from_slice(&full[..MESSAGE_ID_LEN]);
    id
}
