//! The messages of both directions as a recording holds them: the
//! vocabulary that the decoders ([`super::frontend`], [`super::backend`])
//! produce and the encoder ([`super::backend::encode_backend`]) puts back on
//! the wire, and that mocks.yaml stores (hence the serde derives: their
//! layout is the file's).
//!
//! Every field is spelled out so a reviewer can read a mock in a diff; only
//! bytes that are not valid UTF-8 appear as base64. Authentication messages
//! have no variant here: they are never recorded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A value in a Bind, DataRow, CopyData or FunctionCall: `null`, a plain
/// string for UTF-8 bytes, or `{base64: ...}` for anything else.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PgValue {
    Null,
    Text(String),
    Bytes { base64: String },
}

/// A parameter or column format code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Text,
    Binary,
}

/// Statement (`S`) or portal (`P`) target of Describe and Close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Statement,
    Portal,
}

/// A client message, as recorded. Authentication messages never appear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum FrontendMsg {
    Startup {
        protocol: String,
        parameters: BTreeMap<String, String>,
    },
    Query {
        query: String,
    },
    Parse {
        #[serde(default)]
        name: String,
        query: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        param_types: Vec<u32>,
    },
    Bind {
        #[serde(default)]
        portal: String,
        #[serde(default)]
        statement: String,
        /// The text of the statement this Bind runs, resolved through the
        /// Parse that prepared it, on this or an earlier exchange.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        statement_query: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        param_formats: Vec<Format>,
        #[serde(default)]
        params: Vec<PgValue>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        result_formats: Vec<Format>,
    },
    Describe {
        target: Target,
        #[serde(default)]
        name: String,
    },
    Execute {
        #[serde(default)]
        portal: String,
        #[serde(default)]
        max_rows: i32,
    },
    Close {
        target: Target,
        #[serde(default)]
        name: String,
    },
    Sync,
    Flush,
    CopyData {
        data: PgValue,
    },
    CopyDone,
    CopyFail {
        message: String,
    },
    FunctionCall {
        function_oid: u32,
        #[serde(default)]
        arg_formats: Vec<Format>,
        #[serde(default)]
        args: Vec<PgValue>,
        result_format: Format,
    },
    Terminate,
}

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDescription {
    pub name: String,
    #[serde(default)]
    pub table_oid: u32,
    #[serde(default)]
    pub column_id: i16,
    pub type_oid: u32,
    pub type_size: i16,
    pub type_modifier: i32,
    pub format: Format,
}

/// A server message, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum BackendMsg {
    AuthenticationOk,
    ParameterStatus {
        name: String,
        value: String,
    },
    BackendKeyData {
        process_id: i32,
        secret_key: i32,
    },
    ReadyForQuery {
        /// `I` idle, `T` in a transaction, `E` in a failed transaction.
        status: char,
    },
    ParseComplete,
    BindComplete,
    CloseComplete,
    NoData,
    PortalSuspended,
    EmptyQueryResponse,
    ParameterDescription {
        types: Vec<u32>,
    },
    RowDescription {
        fields: Vec<FieldDescription>,
    },
    DataRow {
        values: Vec<PgValue>,
    },
    CommandComplete {
        tag: String,
    },
    /// Fields keyed by their one-letter code (`S`, `V`, `C`, `M`, `D`, ...).
    ErrorResponse {
        fields: BTreeMap<char, String>,
    },
    NoticeResponse {
        fields: BTreeMap<char, String>,
    },
    NotificationResponse {
        process_id: i32,
        channel: String,
        payload: String,
    },
    CopyInResponse {
        format: Format,
        column_formats: Vec<Format>,
    },
    CopyOutResponse {
        format: Format,
        column_formats: Vec<Format>,
    },
    CopyBothResponse {
        format: Format,
        column_formats: Vec<Format>,
    },
    CopyData {
        data: PgValue,
    },
    CopyDone,
    FunctionCallResponse {
        result: PgValue,
    },
}

impl PgValue {
    /// Text when the bytes are UTF-8, base64 otherwise.
    pub fn from_bytes(bytes: Option<&[u8]>) -> Self {
        Self::from_vec(bytes.map(<[u8]>::to_vec))
    }

    /// [`from_bytes`](Self::from_bytes), keeping the buffer as the text
    /// when it is UTF-8 instead of copying it.
    pub fn from_vec(bytes: Option<Vec<u8>>) -> Self {
        use base64::Engine as _;
        match bytes.map(String::from_utf8) {
            None => PgValue::Null,
            Some(Ok(text)) => PgValue::Text(text),
            Some(Err(e)) => PgValue::Bytes {
                base64: base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
            },
        }
    }

    /// The wire bytes, `None` for SQL NULL. Fails only on invalid base64 in
    /// a hand-edited file.
    pub fn to_bytes(&self) -> Result<Option<Vec<u8>>, base64::DecodeError> {
        use base64::Engine as _;
        match self {
            PgValue::Null => Ok(None),
            PgValue::Text(s) => Ok(Some(s.as_bytes().to_vec())),
            PgValue::Bytes { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64)
                .map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_yaml() {
        let values = vec![
            PgValue::Null,
            PgValue::Text("textclassificationproject".into()),
            PgValue::from_bytes(Some(&[0xff, 0x00, 0x01])),
        ];
        let yaml = serde_yaml::to_string(&values).expect("serialise");
        let back: Vec<PgValue> = serde_yaml::from_str(&yaml).expect("parse");
        assert_eq!(back, values);
        assert_eq!(back[2].to_bytes().expect("base64"), Some(vec![0xff, 0, 1]));
    }
}
