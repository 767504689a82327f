//! Message types, their topics, and the payload schema of each.

use std::fmt;

use super::{reject, Map, Reason, Rejected, Value};

const ID_MAX: usize = 256;
const TEXT_MAX: usize = 8192;
const LIST_MAX: usize = 256;
const TOPIC_MAX: usize = 256;

pub const TOPIC_CAPABILITIES: &str = "bzzz/capabilities";
pub const TOPIC_HELP: &str = "bzzz/tasks/help";
pub const TOPIC_META_ISSUE_PREFIX: &str = "bzzz/meta/issue/";
pub const TOPIC_ESCALATION: &str = "bzzz/meta/escalation";

/// The `query_type`s a `meta_msg` may carry.
pub const QUERY_TYPES: &[&str] =
    &["plan", "objection", "question", "answer", "suggestion", "correction", "ack", "help"];

/// The message types, each bound to its topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    Capabilities,
    TaskHelpRequest,
    TaskHelpResponse,
    MetaMsg,
    Escalation,
}

impl MessageType {
    pub const ALL: [MessageType; 5] = [
        MessageType::Capabilities,
        MessageType::TaskHelpRequest,
        MessageType::TaskHelpResponse,
        MessageType::MetaMsg,
        MessageType::Escalation,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MessageType::Capabilities => "capabilities",
            MessageType::TaskHelpRequest => "task_help_request",
            MessageType::TaskHelpResponse => "task_help_response",
            MessageType::MetaMsg => "meta_msg",
            MessageType::Escalation => "escalation",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether `topic` is one this type travels on.
    pub fn allows_topic(self, topic: &str) -> bool {
        match self {
            MessageType::Capabilities => topic == TOPIC_CAPABILITIES,
            MessageType::TaskHelpRequest | MessageType::TaskHelpResponse => topic == TOPIC_HELP,
            MessageType::Escalation => topic == TOPIC_ESCALATION,
            MessageType::MetaMsg => is_meta_issue_topic(topic),
        }
    }

    fn fields(self) -> &'static [Field] {
        match self {
            MessageType::Capabilities => CAPABILITIES,
            MessageType::TaskHelpRequest => HELP_REQUEST,
            MessageType::TaskHelpResponse => HELP_RESPONSE,
            MessageType::MetaMsg => META_MSG,
            MessageType::Escalation => ESCALATION,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `bzzz/meta/issue/{owner}/{repo}/{number}`.
pub fn is_meta_issue_topic(topic: &str) -> bool {
    let Some(rest) = topic.strip_prefix(TOPIC_META_ISSUE_PREFIX) else { return false };
    let mut parts = rest.split('/');
    let name = |s: Option<&str>| {
        s.is_some_and(|s| {
            (1..=100).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
    };
    let number = |s: Option<&str>| {
        s.is_some_and(|s| (1..=19).contains(&s.len()) && !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()))
    };
    topic.len() <= TOPIC_MAX
        && name(parts.next())
        && name(parts.next())
        && number(parts.next())
        && parts.next().is_none()
}

#[derive(Clone, Copy)]
pub(super) enum Ty {
    /// A string of `min..=max` UTF-8 bytes.
    Str(usize, usize),
    /// Lowercase hex of exactly this many digits.
    Hex(usize),
    /// At most `LIST_MAX` items of the type.
    List(&'static Ty),
    /// A non-negative integer in `min..=max`.
    Int(u64, u64),
    Bool,
    NullOr(&'static Ty),
    OneOf(&'static [&'static str]),
    /// An object with these required fields (others allowed).
    Object(&'static [Field]),
    /// Any object.
    AnyObject,
}

pub(super) struct Field {
    name: &'static str,
    ty: Ty,
}

pub(super) const fn f(name: &'static str, ty: Ty) -> Field {
    Field { name, ty }
}

pub(super) const ID: Ty = Ty::Str(1, ID_MAX);
pub(super) const TEXT: Ty = Ty::Str(0, TEXT_MAX);
pub(super) const NAME: Ty = Ty::Str(1, ID_MAX);
pub(super) const HEX32: Ty = Ty::Hex(32);
pub(super) const HEX64: Ty = Ty::Hex(64);
pub(super) const U32: u64 = u32::MAX as u64;

pub(super) static CAPABILITIES: &[Field] = &[
    f("node_id", ID),
    f("peer_id", ID),
    f("models", Ty::List(&NAME)),
    f("tools", Ty::List(&NAME)),
    f("load_permille", Ty::Int(0, 100_000)),
    f("active_tasks", Ty::Int(0, U32)),
    f("max_tasks", Ty::Int(0, U32)),
    f("log_key", HEX64),
    f("version", ID),
];
pub(super) static HELP_REQUEST: &[Field] = &[
    f("request_id", HEX32),
    f("task_id", ID),
    f("problem", TEXT),
    f("tried", Ty::List(&TEXT)),
    f("needs", Ty::List(&NAME)),
];
pub(super) static HELP_RESPONSE: &[Field] =
    &[f("request_id", HEX32), f("task_id", ID), f("can_help", Ty::Bool), f("text", TEXT)];
pub(super) static META_CONTENT: &[Field] =
    &[f("query_type", Ty::OneOf(QUERY_TYPES)), f("text", TEXT), f("parameters", Ty::AnyObject)];
pub(super) static META_MSG: &[Field] =
    &[f("issue_id", ID), f("parent_id", Ty::NullOr(&HEX32)), f("content", Ty::Object(META_CONTENT))];
pub(super) static ESCALATION: &[Field] =
    &[f("issue_id", ID), f("reason", TEXT), f("summary", TEXT), f("messages", Ty::List(&HEX32))];

pub(super) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

pub(super) fn is_lower_hex(s: &str, digits: usize) -> bool {
    s.len() == digits && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Errors come back as the path below the checked value and what is wrong
/// (`.content.text must be ...`); the path is only built on failure.
pub(super) fn check_fields(map: &Map<String, Value>, fields: &[Field]) -> Result<(), String> {
    for field in fields {
        match map.get(field.name) {
            None => return Err(format!(".{} is missing", field.name)),
            Some(v) => check_type(v, &field.ty).map_err(|e| format!(".{}{e}", field.name))?,
        }
    }
    Ok(())
}

pub(super) fn check_type(v: &Value, ty: &Ty) -> Result<(), String> {
    let wrong = |want: &str| Err(format!(" must be {want}, got {}", json_type(v)));
    match *ty {
        Ty::Str(min, max) => match v {
            Value::String(s) if (min..=max).contains(&s.len()) => Ok(()),
            Value::String(s) => Err(format!(" must be {min}..={max} bytes, got {}", s.len())),
            _ => wrong("a string"),
        },
        Ty::Hex(digits) => match v {
            Value::String(s) if is_lower_hex(s, digits) => Ok(()),
            Value::String(_) => Err(format!(" must be {digits} lowercase hex digits")),
            _ => wrong("a string"),
        },
        Ty::List(item) => match v {
            Value::Array(items) if items.len() > LIST_MAX => {
                Err(format!(" has {} items, at most {LIST_MAX} allowed", items.len()))
            }
            Value::Array(items) => {
                items.iter().enumerate().try_for_each(|(i, x)| check_type(x, item).map_err(|e| format!("[{i}]{e}")))
            }
            _ => wrong("a list"),
        },
        Ty::Int(min, max) => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(()),
            _ if v.is_number() => Err(format!(" must be in {min}..={max}")),
            _ => wrong("an integer"),
        },
        Ty::Bool => {
            if v.is_boolean() {
                Ok(())
            } else {
                wrong("a boolean")
            }
        }
        Ty::NullOr(inner) => {
            if v.is_null() {
                Ok(())
            } else {
                check_type(v, inner)
            }
        }
        Ty::OneOf(names) => match v {
            Value::String(s) if names.contains(&s.as_str()) => Ok(()),
            Value::String(s) => Err(format!(" must be one of {}, got {s:?}", names.join("|"))),
            _ => wrong("a string"),
        },
        Ty::Object(fields) => match v {
            Value::Object(map) => check_fields(map, fields),
            _ => wrong("an object"),
        },
        Ty::AnyObject => {
            if v.is_object() {
                Ok(())
            } else {
                wrong("an object")
            }
        }
    }
}

/// Everything about an envelope's header and payload that is `schema`.
pub(super) fn check_schema(
    kind: MessageType,
    topic: &str,
    node_id: &str,
    payload: &Map<String, Value>,
) -> Result<(), Rejected> {
    if !kind.allows_topic(topic) {
        return reject(Reason::Schema, format!("a {kind} message cannot travel on topic {topic:?}"));
    }
    if !(1..=ID_MAX).contains(&node_id.len()) {
        return reject(Reason::Schema, format!("node_id must be 1..={ID_MAX} bytes, got {}", node_id.len()));
    }
    check_fields(payload, kind.fields()).map_err(|e| Rejected::new(Reason::Schema, format!("payload{e}")))
}
