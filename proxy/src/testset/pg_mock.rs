//! One recorded PostgreSQL exchange, decoded into named fields.
//!
//! A mock is what the client sent in one exchange (the startup packet, a
//! simple Query, or an extended-protocol batch up to Sync or Flush, COPY data
//! included) and every server message that answered it, through
//! ReadyForQuery. Every field is spelled out so a reviewer can read a mock in
//! a diff; only bytes that are not valid UTF-8 appear as base64.
//!
//! Authentication is never stored: passwords, MD5 hashes and SASL messages
//! are dropped before a mock is built, and the mock server answers startup
//! with AuthenticationOk.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

// The messages themselves belong to the protocol core; a mock holds them.
pub use crate::pgwire::recorded::{
    BackendMsg, FieldDescription, Format, FrontendMsg, PgValue, Target,
};

/// A whole `mocks.yaml` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PgMock {
    /// recplay's format version (see [`super::FORMAT_VERSION`]).
    pub version: u32,
    /// [`MOCK_KIND`] (from format 3) or [`LEGACY_MOCK_KIND`] (formats 1
    /// and 2), as [`mock_kind`] says for `version`; borrowed, so recording
    /// does not allocate it for every mock.
    pub kind: Cow<'static, str>,
    /// `mock-N`, unique within the test set, in recording order.
    pub name: String,
    pub spec: MockSpec,
}

/// `spec:` of a mock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MockSpec {
    /// Recording-time connection number (1-based, per test set).
    pub connection: u64,
    /// Position of this exchange on its connection (0 = startup).
    pub position: u64,
    /// Whether any test may reuse it (`session`) or it belongs to one test.
    pub lifetime: Lifetime,
    /// The startup parameters of the connection (user, database,
    /// application_name, ...): lets replay pick a matching session.
    /// Shared by every mock of the connection rather than copied into each.
    #[serde(default, skip_serializing_if = "no_parameters")]
    pub startup: Arc<BTreeMap<String, String>>,
    #[serde(serialize_with = "super::timestamp::serialize")]
    pub request_timestamp: DateTime<Utc>,
    #[serde(serialize_with = "super::timestamp::serialize")]
    pub response_timestamp: DateTime<Utc>,
    /// Client messages of the exchange, in order.
    pub requests: Vec<FrontendMsg>,
    /// Server messages answering it, in order, through ReadyForQuery.
    pub responses: Vec<BackendMsg>,
}

fn no_parameters(startup: &Arc<BTreeMap<String, String>>) -> bool {
    startup.is_empty()
}

/// `kind:` of recplay's mocks from format 3 on. Keploy skips every kind
/// with a dash in it as one it does not serve, so it never takes recplay's
/// layout for one of its own.
pub const MOCK_KIND: &str = "recplay-Postgres";

/// `kind:` of recplay's mocks in formats 1 and 2.
pub const LEGACY_MOCK_KIND: &str = "Postgres";

/// The `kind:` a recplay mock of format `version` carries.
pub fn mock_kind(version: u32) -> &'static str {
    if version >= super::PLAIN_MOCK_VERSION {
        MOCK_KIND
    } else {
        LEGACY_MOCK_KIND
    }
}

/// Who may use a mock at replay.
///
/// Written as plain YAML (format 3): `session` and `unattributed` as
/// strings, a test's as the one-key map `{test: test-N}`. Read in every
/// spelling recplay has written, the tag `!test test-N` of formats 1 and 2
/// included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Lifetime {
    /// Connection set-up and session-level statements (SET, SHOW, BEGIN,
    /// COMMIT, ...): reusable by any test, never consumed.
    Session,
    /// Recorded while this HTTP test (`test-N`) was in flight: consumed once.
    Test(String),
    /// Recorded outside any test's window (e.g. app start-up queries):
    /// consumed once, preferred by no test.
    Unattributed,
}

impl Serialize for Lifetime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        match self {
            Lifetime::Session => serializer.serialize_str("session"),
            Lifetime::Unattributed => serializer.serialize_str("unattributed"),
            Lifetime::Test(test) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("test", test)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Lifetime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LifetimeVisitor)
    }
}

struct LifetimeVisitor;

const LIFETIME_VARIANTS: &[&str] = &["session", "unattributed", "test"];

impl LifetimeVisitor {
    fn unit<E: serde::de::Error>(name: &str) -> Result<Lifetime, E> {
        match name {
            "session" => Ok(Lifetime::Session),
            "unattributed" => Ok(Lifetime::Unattributed),
            other => Err(E::unknown_variant(other, LIFETIME_VARIANTS)),
        }
    }
}

impl<'de> serde::de::Visitor<'de> for LifetimeVisitor {
    type Value = Lifetime;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("`session`, `unattributed` or `{test: <test name>}`")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Lifetime, E> {
        Self::unit(v)
    }

    /// Format 3: a one-key map.
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Lifetime, A::Error> {
        use serde::de::Error as _;
        let Some(key) = map.next_key::<String>()? else {
            return Err(A::Error::invalid_length(0, &self));
        };
        if key != "test" {
            return Err(A::Error::unknown_field(&key, &["test"]));
        }
        let test = map.next_value::<String>()?;
        if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            return Err(A::Error::invalid_length(2, &self));
        }
        Ok(Lifetime::Test(test))
    }

    /// Formats 1 and 2: a YAML tag (`!test test-N`), which serde_yaml
    /// hands over as an enum.
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Lifetime, A::Error> {
        use serde::de::VariantAccess as _;
        let (variant, access) = data.variant::<String>()?;
        if variant == "test" {
            return access.newtype_variant::<String>().map(Lifetime::Test);
        }
        access.unit_variant()?;
        Self::unit(&variant)
    }
}

impl PgMock {
    /// A mock in the current format.
    pub fn new(name: impl Into<String>, spec: MockSpec) -> Self {
        PgMock {
            version: super::FORMAT_VERSION,
            kind: Cow::Borrowed(mock_kind(super::FORMAT_VERSION)),
            name: name.into(),
            spec,
        }
    }

    /// Refuses a mock whose `kind:` is not the one its format writes: a
    /// document of another kind is not recplay's, whatever its version.
    pub fn check_kind(&self) -> Result<(), String> {
        let expected = mock_kind(self.version);
        if self.kind != expected {
            return Err(format!(
                "is `kind: {}`, but recplay's format-{} mocks are `kind: {expected}`",
                self.kind, self.version
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling recplay ever wrote reads back, and anything else is
    /// an error rather than a guess.
    #[test]
    fn lifetimes_read_in_every_spelling() {
        let read = |text: &str| serde_yaml::from_str::<Lifetime>(text).map_err(|e| e.to_string());
        let test = Ok(Lifetime::Test("test-3".into()));
        assert_eq!(read("session"), Ok(Lifetime::Session));
        assert_eq!(read("unattributed"), Ok(Lifetime::Unattributed));
        assert_eq!(read("!test test-3"), test);
        assert_eq!(read("{test: test-3}"), test);
        assert_eq!(read("test: test-3"), test);
        assert_eq!(read("{test: \"12\"}"), Ok(Lifetime::Test("12".into())));
        for bad in [
            "forever",
            "{}",
            "{test: a, more: b}",
            "{tset: a}",
            "[test-3]",
            "!other x",
        ] {
            assert!(read(bad).is_err(), "{bad} read as {:?}", read(bad));
        }
    }

    #[test]
    fn a_mock_must_carry_its_formats_kind() {
        let text = |version: u32, kind: &str| {
            format!(
                "version: {version}\nkind: {kind}\nname: mock-1\nspec:\n  connection: 1\n  position: 0\n  lifetime:\n    test: test-1\n  request_timestamp: \"2026-01-01T00:00:00Z\"\n  response_timestamp: \"2026-01-01T00:00:00Z\"\n  requests: []\n  responses: []\n"
            )
        };
        for (version, kind, ok) in [
            (3, MOCK_KIND, true),
            (3, LEGACY_MOCK_KIND, false),
            (2, LEGACY_MOCK_KIND, true),
            (2, MOCK_KIND, false),
            (1, LEGACY_MOCK_KIND, true),
        ] {
            let mock: PgMock = serde_yaml::from_str(&text(version, kind)).expect("parse");
            assert_eq!(mock.spec.lifetime, Lifetime::Test("test-1".into()));
            assert_eq!(mock.check_kind().is_ok(), ok, "{version} {kind}");
        }
    }
}
