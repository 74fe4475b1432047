//! Reading fields out of a Keploy YAML document with errors that name them.
//!
//! Keploy's documents are read as untyped YAML rather than through serde
//! structs: a wrong type or a missing field must say which field (by its
//! dotted path from the document's root), and a document Keploy wrote with
//! an older or newer layout must fail on the one field that differs, never
//! on the whole document with serde's generic message.

use serde_yaml::Value;

/// A YAML node and the dotted path that reached it.
#[derive(Debug, Clone)]
pub struct Field<'a> {
    pub value: &'a Value,
    pub path: String,
}

impl<'a> Field<'a> {
    /// The document root.
    pub fn root(value: &'a Value) -> Self {
        Field {
            value: untag(value),
            path: String::new(),
        }
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// A key of a mapping, `None` when absent or null.
    pub fn opt(&self, key: &str) -> Result<Option<Field<'a>>, String> {
        let Value::Mapping(map) = self.value else {
            return Err(self.wrong("a mapping"));
        };
        Ok(map.get(key).map(untag).and_then(|v| {
            (!v.is_null()).then(|| Field {
                value: v,
                path: self.child_path(key),
            })
        }))
    }

    /// A key that must be present.
    pub fn get(&self, key: &str) -> Result<Field<'a>, String> {
        self.opt(key)?
            .ok_or_else(|| format!("`{}` is missing", self.child_path(key)))
    }

    /// The elements of a sequence; an absent field reads as empty.
    pub fn items(&self) -> Result<Vec<Field<'a>>, String> {
        let Value::Sequence(seq) = self.value else {
            return Err(self.wrong("a sequence"));
        };
        Ok(seq
            .iter()
            .enumerate()
            .map(|(i, v)| Field {
                value: untag(v),
                path: format!("{}[{i}]", self.path),
            })
            .collect())
    }

    /// A sequence under `key`, empty when absent.
    pub fn list(&self, key: &str) -> Result<Vec<Field<'a>>, String> {
        match self.opt(key)? {
            Some(f) => f.items(),
            None => Ok(Vec::new()),
        }
    }

    pub fn str(&self) -> Result<&'a str, String> {
        self.value.as_str().ok_or_else(|| self.wrong("a string"))
    }

    pub fn int(&self) -> Result<i64, String> {
        self.value.as_i64().ok_or_else(|| self.wrong("an integer"))
    }

    /// An integer that must fit `T` (an OID, a format code, a size).
    pub fn int_as<T: TryFrom<i64>>(&self) -> Result<T, String> {
        let n = self.int()?;
        T::try_from(n).map_err(|_| format!("`{}` is out of range: {n}", self.path))
    }

    /// A string under `key`, empty when absent.
    pub fn str_or_empty(&self, key: &str) -> Result<&'a str, String> {
        match self.opt(key)? {
            Some(f) => f.str(),
            None => Ok(""),
        }
    }

    /// An integer under `key`, `default` when absent.
    pub fn int_or<T: TryFrom<i64>>(&self, key: &str, default: T) -> Result<T, String> {
        match self.opt(key)? {
            Some(f) => f.int_as(),
            None => Ok(default),
        }
    }

    /// "`path` should be WHAT, found ...", for a field of the wrong type.
    pub fn wrong(&self, what: &str) -> String {
        let found = match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Sequence(_) => "a sequence",
            Value::Mapping(_) => "a mapping",
            Value::Tagged(_) => "a tagged value",
        };
        let at = if self.path.is_empty() {
            "the document"
        } else {
            self.path.as_str()
        };
        format!("`{at}` should be {what}, found {found}")
    }
}

/// Core-schema tags (`!!str`, `!!int`, ...) say nothing the value does not;
/// only `!!binary` changes meaning and is kept for [`binary`].
fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(t) if !is_binary_tag(&t.tag) => untag(&t.value),
        other => other,
    }
}

fn is_binary_tag(tag: &serde_yaml::value::Tag) -> bool {
    tag.to_string().trim_start_matches('!') == "binary"
}

/// The bytes of a value Keploy wrote from a Go `[]byte`: a `!!binary`
/// scalar, or a sequence of byte values (yaml.v3's reflective form).
///
/// serde_yaml resolves `!!binary` to the plain base64 string and drops the
/// tag, so a string is taken as base64 here: callers ask for bytes only
/// where Keploy's schema says bytes (bytea cells, COPY data, raw cells).
/// Keploy's writer folds long payloads over several lines; whitespace is
/// not part of base64 and is dropped.
pub fn bytes(field: &Field<'_>) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let text = match field.value {
        Value::Tagged(t) => t.value.as_str(),
        Value::Sequence(items) => {
            return items
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| format!("`{}` should be a list of byte values", field.path));
        }
        other => other.as_str(),
    };
    let Some(text) = text else {
        return Err(field.wrong("base64 bytes"));
    };
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| format!("`{}` is not valid base64: {e}", field.path))
}

/// The bytes of a value still tagged `!!binary` (by a reader that keeps
/// tags); `None` for anything else.
pub fn binary(field: &Field<'_>) -> Option<Result<Vec<u8>, String>> {
    match field.value {
        Value::Tagged(t) if is_binary_tag(&t.tag) => Some(bytes(field)),
        _ => None,
    }
}
