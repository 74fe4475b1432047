//! Keploy's v1 Postgres layout, written from real traffic.
//!
//! [`Capture`] is a plain TCP relay in front of a real PostgreSQL that keeps
//! every read of either side, as Keploy's v1 recorder saw them; and
//! [`Capture::keploy_v1`] writes them the way that recorder did: one
//! document per round trip of a connection (the client's packets until the
//! server answers, then the server's until the client speaks again), each
//! packet with its `header` letters and its raw bytes as `payload`. Packets
//! that carry authentication are written as Keploy wrote them, with letters
//! and fields but no bytes (it kept the password there; this writer keeps
//! no secret at all), so the reader's field path is exercised too.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One read from one side of one connection.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Connections are counted from 1 in the order they were accepted.
    pub connection: u64,
    pub from_client: bool,
    pub bytes: Vec<u8>,
    pub at: DateTime<Utc>,
}

/// One round trip of a connection: `(started, connection, requests,
/// responses)`.
type RoundTrip = (DateTime<Utc>, u64, Vec<Chunk>, Vec<Chunk>);

/// A running relay; stops accepting when dropped.
pub struct Capture {
    pub addr: SocketAddr,
    chunks: Arc<Mutex<Vec<Chunk>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Capture {
    /// Relays 127.0.0.1:<free port> to `upstream` (`HOST:PORT`).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let chunks = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream.to_string();
        let kept = Arc::clone(&chunks);
        let task = tokio::spawn(async move {
            let mut next = 0u64;
            while let Ok((client, _)) = listener.accept().await {
                next += 1;
                let server = TcpStream::connect(&upstream).await.expect("upstream");
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, next, true, Arc::clone(&kept)));
                tokio::spawn(pump(sr, cw, next, false, Arc::clone(&kept)));
            }
        });
        Capture { addr, chunks, task }
    }

    /// Every read relayed so far, in the order they happened.
    pub fn chunks(&self) -> Vec<Chunk> {
        self.chunks.lock().expect("chunks").clone()
    }

    /// Everything relayed so far as Keploy v1 documents (see the module
    /// docs), the n-th document named `mock-n`.
    pub fn keploy_v1(&self) -> String {
        let chunks = self.chunks();
        let mut connections: Vec<u64> = chunks.iter().map(|c| c.connection).collect();
        connections.sort_unstable();
        connections.dedup();
        // Round trips of every connection, ordered by when they started.
        let mut trips: Vec<RoundTrip> = Vec::new();
        for conn in connections {
            let mut requests: Vec<Chunk> = Vec::new();
            let mut responses: Vec<Chunk> = Vec::new();
            for chunk in chunks.iter().filter(|c| c.connection == conn) {
                if chunk.from_client && !responses.is_empty() {
                    trips.push((requests[0].at, conn, requests, responses));
                    requests = Vec::new();
                    responses = Vec::new();
                }
                if chunk.from_client {
                    requests.push(chunk.clone());
                } else if !requests.is_empty() {
                    responses.push(chunk.clone());
                }
            }
            if !requests.is_empty() && !responses.is_empty() {
                trips.push((requests[0].at, conn, requests, responses));
            }
        }
        trips.sort_by_key(|t| (t.0, t.1));
        let mut out = String::new();
        let mut startup_seen = std::collections::HashSet::new();
        for (n, (_, conn, requests, responses)) in trips.iter().enumerate() {
            if n > 0 {
                out.push_str("---\n");
            }
            writeln!(
                out,
                "version: api.keploy.io/v1beta1\nkind: Postgres\nname: mock-{n}"
            )
            .ok();
            out.push_str("spec:\n    metadata:\n        type: config\n    postgresrequests:\n");
            for r in requests {
                let first = startup_seen.insert(*conn);
                request_packet(&mut out, &r.bytes, first || is_startup_packet(&r.bytes));
            }
            out.push_str("    postgresresponses:\n");
            for r in responses {
                response_packet(&mut out, &r.bytes);
            }
            writeln!(
                out,
                "    reqtimestampmock: {}\n    restimestampmock: {}",
                time(requests[0].at),
                time(responses[responses.len() - 1].at)
            )
            .ok();
            writeln!(out, "connectionId: \"{conn}\"").ok();
        }
        out
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    connection: u64,
    from_client: bool,
    chunks: Arc<Mutex<Vec<Chunk>>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        chunks.lock().expect("chunks").push(Chunk {
            connection,
            from_client,
            bytes: buf[..n].to_vec(),
            at: Utc::now(),
        });
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// A timestamp as Go's `time.Time` writes it in YAML.
pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `(tag, body)` of each tagged message in `bytes`.
pub fn messages(bytes: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 5 <= bytes.len() {
        let len = u32::from_be_bytes([bytes[at + 1], bytes[at + 2], bytes[at + 3], bytes[at + 4]])
            as usize;
        let end = (at + 1 + len).min(bytes.len());
        out.push((bytes[at], &bytes[at + 5..end]));
        at = end;
    }
    out
}

/// A tagless packet: StartupMessage, SSLRequest, GSSENCRequest.
pub fn is_startup_packet(bytes: &[u8]) -> bool {
    bytes.len() >= 8
        && u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize == bytes.len()
        && matches!(
            u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            196_608 | 80_877_103 | 80_877_104
        )
}

fn letters(msgs: &[(u8, &[u8])]) -> String {
    let quoted: Vec<String> = msgs
        .iter()
        .map(|(t, _)| format!("\"{}\"", *t as char))
        .collect();
    format!("[{}]", quoted.join(", "))
}

fn request_packet(out: &mut String, bytes: &[u8], first_of_connection: bool) {
    if first_of_connection {
        writeln!(
            out,
            "        - identifier: StartupRequest\n          length: {}\n          payload: {}",
            bytes.len(),
            b64(bytes)
        )
        .ok();
        return;
    }
    let msgs = messages(bytes);
    let header = letters(&msgs);
    if msgs.first().is_some_and(|(t, _)| *t == b'p') {
        // Authentication: letters only, never the secret.
        writeln!(
            out,
            "        - header: {header}\n          identifier: ClientRequest\n          length: {}\n          msg_type: 112\n          auth_type: 0",
            bytes.len()
        )
        .ok();
        return;
    }
    writeln!(
        out,
        "        - header: {header}\n          identifier: ClientRequest\n          length: {}\n          payload: {}",
        bytes.len(),
        b64(bytes)
    )
    .ok();
    if let [(b'Q', body)] = msgs.as_slice() {
        let text = String::from_utf8_lossy(body.strip_suffix(&[0]).unwrap_or(body));
        writeln!(
            out,
            "          query:\n            string: {}",
            serde_json::to_string(&text).unwrap_or_default()
        )
        .ok();
    }
}

fn response_packet(out: &mut String, bytes: &[u8]) {
    let msgs = messages(bytes);
    if bytes.len() == 1 || !msgs.iter().any(|(t, _)| *t == b'R') {
        writeln!(
            out,
            "        - header: {}\n          identifier: ServerResponse\n          length: {}\n          payload: {}",
            letters(&msgs),
            bytes.len(),
            b64(bytes)
        )
        .ok();
        return;
    }
    // Authentication in the packet: fields only, as Keploy wrote them.
    let auth_type = msgs
        .iter()
        .rev()
        .find(|(t, _)| *t == b'R')
        .and_then(|(_, body)| body.get(..4))
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    writeln!(
        out,
        "        - header: {}\n          identifier: ServerResponse\n          length: {}",
        letters(&msgs),
        bytes.len()
    )
    .ok();
    let statuses: Vec<(String, String)> = msgs
        .iter()
        .filter(|(t, _)| *t == b'S')
        .map(|(_, body)| {
            let mut parts = body.split(|b| *b == 0);
            let name = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let value = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            (name, value)
        })
        .collect();
    if !statuses.is_empty() {
        out.push_str("          parameter_status:\n");
        for (name, value) in statuses {
            writeln!(
                out,
                "            - name: {}\n              value: {}",
                serde_json::to_string(&name).unwrap_or_default(),
                serde_json::to_string(&value).unwrap_or_default()
            )
            .ok();
        }
    }
    for (tag, body) in &msgs {
        match tag {
            b'K' if body.len() >= 8 => {
                let pid = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                let key = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                writeln!(out, "          backend_key_data:\n            process_id: {pid}\n            secret_key: {key}").ok();
            }
            b'Z' if !body.is_empty() => {
                writeln!(
                    out,
                    "          ready_for_query:\n            txstatus: {}",
                    body[0]
                )
                .ok();
            }
            _ => {}
        }
    }
    writeln!(
        out,
        "          msg_type: 82\n          auth_type: {auth_type}"
    )
    .ok();
}
