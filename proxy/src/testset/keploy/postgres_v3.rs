//! Keploy's `PostgresV2` and `PostgresV3` mock documents, converted into
//! recplay's own mocks so the mock server and its matcher serve them.
//!
//! A PostgresV3 document holds one of five sub-types under
//! `spec.postgresV3.type`:
//!
//! - `query`: one invocation of a statement and its answer, served (see
//!   [`super::exchanges`] for the exchanges it becomes);
//! - `session`: the start-up answer (ParameterStatus, BackendKeyData),
//!   served as a start-up mock;
//! - `catalog`, `data`, `generator`: a schema snapshot, a table's seed
//!   rows and a stream of volatile values that Keploy's own replayer feeds
//!   to the query engine it runs at replay. None of them is an exchange a
//!   client made, so there is nothing to match a live exchange against:
//!   they are reported as not served.
//!
//! PostgresV2 documents keep each wire message as an opaque `message`
//! whose layout is defined by Keploy's integrations module, outside its
//! published source; their messages cannot be decoded faithfully, so they
//! are reported as not served.
//!
//! Keploy's own lifetime metadata (`lifetime`, `metadata.type`) is not
//! used: session-level statements are found from the statement text, the
//! way recplay's recorder finds them, and everything else is left for the
//! loader to attribute by its timestamps.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};

use super::exchanges::{self, Placement};
use super::fields::Field;
use super::query;
use crate::testset::pg_exchange::lifetime::is_session_sql;
use crate::testset::pg_mock::{BackendMsg, FrontendMsg, Lifetime, MockSpec, PgMock};

/// One Keploy `PostgresV2` or `PostgresV3` document (`kind` says which) as
/// recplay mocks. Session-level statements come back with
/// `Lifetime::Session`, the rest `Lifetime::Unattributed`: the loader
/// attributes them to the test whose window holds their timestamps.
pub fn convert(kind: &str, doc: &serde_yaml::Value) -> Result<Vec<PgMock>, String> {
    let root = Field::root(doc);
    match kind {
        "PostgresV3" => convert_v3(&root),
        "PostgresV2" => convert_v2(&root),
        other => Err(format!(
            "`{other}` is not a kind this reader converts (PostgresV2 or PostgresV3)"
        )),
    }
}

fn convert_v3(root: &Field<'_>) -> Result<Vec<PgMock>, String> {
    let spec = root.get("spec")?;
    let v3 = spec.get("postgresV3")?;
    let sub_type = v3.get("type")?.str()?;
    let name = match root.str_or_empty("name")? {
        "" => "keploy-postgres".to_string(),
        n => n.to_string(),
    };
    match sub_type {
        "query" => {
            let query = v3.get("query")?;
            let invocation = query.str_or_empty("invocationId")?;
            let (connection, position) = place(invocation, root.str_or_empty("connectionId")?);
            let at = Placement {
                name: if invocation.is_empty() {
                    name
                } else {
                    format!("{name}-{invocation}")
                },
                connection,
                position,
                lifetime_of,
                request_timestamp: timestamp(&spec, "reqTimestampMock")?
                    .ok_or("`spec.reqTimestampMock` is missing")?,
                response_timestamp: timestamp(&spec, "resTimestampMock")?
                    .ok_or("`spec.resTimestampMock` is missing")?,
            };
            exchanges::mocks(&query::read(&query)?, &at)
        }
        "session" => Ok(vec![session(&v3.get("session")?, &spec, name)?]),
        "catalog" | "data" | "generator" => Err(format!(
            "PostgresV3 `{sub_type}` documents are not served: they seed Keploy's own replay \
             engine and record no exchange a client made"
        )),
        other => Err(format!(
            "`spec.postgresV3.type` is `{other}`, not one of session, catalog, data, query, generator"
        )),
    }
}

fn lifetime_of(sql: &str) -> Lifetime {
    if is_session_sql(sql) {
        Lifetime::Session
    } else {
        Lifetime::Unattributed
    }
}

/// Connection and position from Keploy's `<connID>:<seq>` invocation id
/// (recplay counts connections from 1 and keeps 0 for the start-up);
/// `connectionId` (`conn-17`) when the id is of an older form.
fn place(invocation: &str, connection_id: &str) -> (u64, u64) {
    if let Some((conn, seq)) = invocation.split_once(':') {
        if let (Ok(conn), Ok(seq)) = (conn.parse::<u64>(), seq.parse::<u64>()) {
            return (conn.saturating_add(1), seq.saturating_add(1));
        }
    }
    let digits: String = connection_id.chars().filter(char::is_ascii_digit).collect();
    (digits.parse::<u64>().map_or(0, |c| c.saturating_add(1)), 0)
}

/// `spec.<key>` as Go's `time.Time` writes it (RFC 3339); `None` when
/// absent or Go's zero time (year 1), which Keploy writes for "unset".
fn timestamp(spec: &Field<'_>, key: &str) -> Result<Option<DateTime<Utc>>, String> {
    let Some(field) = spec.opt(key)? else {
        return Ok(None);
    };
    let text = field.str()?;
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|e| {
            format!(
                "`{}` is not an RFC 3339 timestamp ({text:?}): {e}",
                field.path
            )
        })?
        .with_timezone(&Utc);
    Ok((t.year() > 1).then_some(t))
}

/// The start-up answer of a recorded session: any connection may reuse it.
fn session(s: &Field<'_>, spec: &Field<'_>, name: String) -> Result<PgMock, String> {
    let mut parameters: BTreeMap<String, String> = BTreeMap::new();
    if let Some(status) = s.opt("parameterStatus")? {
        let Some(map) = status.value.as_mapping() else {
            return Err(status.wrong("a mapping"));
        };
        for (k, v) in map {
            let (Some(k), Some(v)) = (k.as_str(), v.as_str()) else {
                return Err(format!("`{}` should map names to strings", status.path));
            };
            parameters.insert(k.to_string(), v.to_string());
        }
    }
    let server_version = s.str_or_empty("serverVersion")?;
    if !server_version.is_empty() {
        parameters
            .entry("server_version".into())
            .or_insert_with(|| server_version.to_string());
    }
    let mut responses = vec![BackendMsg::AuthenticationOk];
    responses.extend(
        parameters
            .into_iter()
            .map(|(name, value)| BackendMsg::ParameterStatus { name, value }),
    );
    responses.push(BackendMsg::BackendKeyData {
        process_id: s.int_or("backendProcessID", 0)?,
        secret_key: s.int_or("backendSecretKey", 0)?,
    });
    responses.push(BackendMsg::ReadyForQuery { status: 'I' });
    let protocol = match s.str_or_empty("protocolVersion")? {
        "" => "3.0",
        p => p,
    };
    let at = timestamp(spec, "reqTimestampMock")?.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let until = timestamp(spec, "resTimestampMock")?.unwrap_or(at);
    Ok(PgMock::new(
        format!("{name}-session"),
        MockSpec {
            connection: 0,
            position: 0,
            lifetime: Lifetime::Session,
            startup: Arc::default(),
            request_timestamp: at,
            response_timestamp: until,
            requests: vec![FrontendMsg::Startup {
                protocol: protocol.to_string(),
                parameters: BTreeMap::new(),
            }],
            responses,
        },
    ))
}

/// PostgresV2 documents are checked for their envelope, then refused.
fn convert_v2(root: &Field<'_>) -> Result<Vec<PgMock>, String> {
    let spec = root.get("spec")?;
    spec.list("requests")?;
    spec.list("responses")?;
    Err(
        "PostgresV2 documents are not served: each packet's `message` has a layout defined by \
         Keploy's integrations module, outside its published source, so it cannot be decoded \
         faithfully; re-record with recplay or a Keploy that writes PostgresV3"
            .into(),
    )
}
