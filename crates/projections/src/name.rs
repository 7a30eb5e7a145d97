//! `Name`: a short string kept inside its owner (a policy id, a metric name) rather than behind
//! a pointer. The SLA clocks of a ticket are compared by policy and metric on nearly every
//! event, in three models (the SLA view, the queues and the reports); with `String`s each
//! comparison followed a pointer to a heap block of its own, a cache miss per clock on replay
//! of a large log. Names up to `INLINE_MAX` bytes (every metric, and policy ids as configured in
//! practice) live in the clock itself; longer ones fall back to the heap.
//!
//! It serializes as a plain string, so snapshots keep their shape.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest name kept inline: with the length byte and the enum's tag, a `Name` is 24 bytes, the
/// size of the `String` it replaces.
pub const INLINE_MAX: usize = 22;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE_MAX] },
    Heap(Box<str>),
}

impl Name {
    pub fn new(text: &str) -> Name {
        if text.len() <= INLINE_MAX {
            let mut bytes = [0; INLINE_MAX];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Name(Repr::Inline {
                len: text.len() as u8,
                bytes,
            })
        } else {
            Name(Repr::Heap(text.into()))
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(text) => text.as_bytes(),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Built from a `&str` cut at its own length: always valid UTF-8.
            Repr::Inline { .. } => {
                std::str::from_utf8(self.as_bytes()).expect("a Name holds the bytes of a str")
            }
            Repr::Heap(text) => text,
        }
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// Compares bytes, without the UTF-8 check `as_str` makes.
impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Name {
        Name::new(text)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Name, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Name, E> {
                Ok(Name::new(text))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_text_inline_or_not_and_serialize_as_strings() {
        let cases = [
            "",
            "resolution",
            "first_response",
            // Exactly the inline limit, one past it, a multi-byte character across the limit.
            "abcdefghijklmnopqrstuv",
            "abcdefghijklmnopqrstuvw",
            "policy-é-éééééééééé",
            "政策：贵宾客户的首次响应时间目标",
        ];
        for text in cases {
            let name = Name::new(text);
            assert_eq!(name.as_str(), text);
            let owned = text.to_owned();
            assert!(name == *text && name == text && name == owned);
            assert_eq!(
                matches!(name.0, Repr::Inline { .. }),
                text.len() <= INLINE_MAX,
                "{text:?}"
            );
            let json = serde_json::to_string(&name).expect("serializes");
            assert_eq!(json, serde_json::to_string(text).expect("serializes"));
            let back: Name = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back, name);
            assert_eq!(format!("{name}"), text);
            assert_eq!(format!("{name:?}"), format!("{text:?}"));
        }
        assert_ne!(Name::new("a"), Name::new("b"));
        assert!(Name::new("resolution") != "resolutio");
        assert_eq!(size_of::<Name>(), size_of::<String>());
        // An escaped string (not borrowable from the input) deserializes too.
        let escaped: Name = serde_json::from_str(r#""first\u005fresponse""#).expect("escaped");
        assert_eq!(escaped, "first_response");
    }
}
