//! Recording through the real `recplay record`: planted secrets in
//! headers, JSON bodies, form bodies and query strings, and the passwords
//! of SCRAM and MD5 database users, appear nowhere under keploy/; replay
//! fills the placeholders from the environment and a secrets file, and
//! names each missing one.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use recplay_proxy::testset::HttpTestCase;
use serde_json::{json, Value};

use super::{assert_nowhere, recplay, Planted};
use crate::support::http::call;
use crate::support::pg::{free_port, PgCluster, TcpAuth};
use crate::support::recplay::RecplayRecord;
use crate::support::serve::serve;

const SCRAM_USER_PASSWORD: &str = "scram-user-Pw-58q";
const MD5_USER_PASSWORD: &str = "md5-user-Pw-14k";

fn answer(status: u16, headers: &[(&str, String)], body: Value) -> Response<Full<Bytes>> {
    let mut b = Response::builder()
        .status(status)
        .header("Content-Type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

/// The app: every route checks the credential it is sent, so a replay
/// passes only when recplay sends the real values again.
async fn app(p: Arc<Planted>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let denied = || answer(401, &[], json!({"error": "bad credentials"}));
    match (parts.method.as_str(), parts.uri.path()) {
        ("POST", "/login") => {
            let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if sent["password"] != p.password.as_str() {
                return denied();
            }
            answer(
                200,
                &[(
                    "Set-Cookie",
                    format!("session={}; Path=/; HttpOnly", p.session),
                )],
                json!({"user": "ann", "access_token": p.jwt, "token_type": "bearer"}),
            )
        }
        ("GET", "/me") => {
            let ok = header("authorization") == format!("Bearer {}", p.jwt)
                && header("x-api-key") == p.api_key
                && header("cookie") == format!("session={}", p.session);
            if !ok {
                return denied();
            }
            answer(200, &[], json!({"user": "ann", "jwt": p.jwt}))
        }
        ("GET", "/search") => {
            let expected = format!("api_key={}&q=widgets", p.query_key);
            if parts.uri.query() != Some(expected.as_str()) {
                return denied();
            }
            answer(200, &[], json!({"hits": 2}))
        }
        ("POST", "/form") => {
            let expected = format!("user=ann&password={}&note={}", p.form_password, p.github);
            if body != expected.as_bytes() {
                return denied();
            }
            answer(200, &[], json!({"ok": true}))
        }
        ("POST", "/notes") => {
            if !String::from_utf8_lossy(&body).contains(&p.aws) {
                return denied();
            }
            answer(201, &[], json!({"stored": true}))
        }
        _ => answer(404, &[], json!({"error": "no route"})),
    }
}

/// Method, path and query, headers, body, expected status.
type Step<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, Vec<u8>, u16);

fn record_flow(p: &Planted, rec: &RecplayRecord) {
    let login =
        serde_json::to_vec(&json!({"username": "ann", "password": p.password})).expect("json");
    let auth = format!("Bearer {}", p.jwt);
    let cookie = format!("session={}", p.session);
    let me: [(&str, &str); 3] = [
        ("Authorization", &auth),
        ("X-Api-Key", &p.api_key),
        ("Cookie", &cookie),
    ];
    let form = format!("user=ann&password={}&note={}", p.form_password, p.github);
    let note = format!("deploy key {} rotated", p.aws);
    let search = format!("/search?api_key={}&q=widgets", p.query_key);
    let steps: Vec<Step> = vec![
        (
            "POST",
            "/login".into(),
            vec![("Content-Type", "application/json")],
            login,
            200,
        ),
        ("GET", "/me".into(), me.to_vec(), vec![], 200),
        ("GET", search, vec![], vec![], 200),
        ("GET", "/me".into(), me.to_vec(), vec![], 200),
        (
            "POST",
            "/form".into(),
            vec![("Content-Type", "application/x-www-form-urlencoded")],
            form.into_bytes(),
            200,
        ),
        (
            "POST",
            "/notes".into(),
            vec![("Content-Type", "text/plain")],
            note.into_bytes(),
            201,
        ),
    ];
    for (method, path, headers, body, status) in steps {
        let got = call(method, &rec.url(&path), &headers, &body);
        assert_eq!(got.status, status, "{method} {path}: {got:?}");
    }
}

fn load(dir: &std::path::Path, n: u32) -> HttpTestCase {
    let path = dir.join(format!("keploy/test-set-0/tests/test-{n}.yaml"));
    let text = std::fs::read_to_string(&path).expect("test file");
    serde_yaml::from_str(&text).expect("test case parses")
}

fn env_of(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn planted_secrets_and_database_passwords_never_reach_the_recording() {
    let p = Arc::new(Planted::new());
    let pg = PgCluster::start_with(TcpAuth::Passwords);
    pg.psql(&format!(
        "SET password_encryption = 'scram-sha-256'; CREATE ROLE alice LOGIN PASSWORD '{SCRAM_USER_PASSWORD}'; \
         SET password_encryption = 'md5'; CREATE ROLE md5bob LOGIN PASSWORD '{MD5_USER_PASSWORD}'"
    ));
    let stored_hashes: Vec<String> = pg
        .psql("SELECT rolpassword FROM pg_authid WHERE rolname IN ('alice', 'md5bob')")
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| l.starts_with("md5") || l.starts_with("SCRAM"))
        .collect();
    assert_eq!(stored_hashes.len(), 2, "{stored_hashes:?}");

    let served = {
        let p = p.clone();
        serve(move |req| app(p.clone(), req))
    };
    let work = tempfile::tempdir().expect("tempdir");
    let keploy = work.path().join("keploy");
    let pg_port = free_port();
    let pg_listen = format!("127.0.0.1:{pg_port}");
    let rec = RecplayRecord::start(
        &keploy,
        &served.url(),
        &["--pg-listen", &pg_listen, "--pg-upstream", &pg.addr()],
    );
    record_flow(&p, &rec);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        for (user, password) in [
            ("alice", SCRAM_USER_PASSWORD),
            ("md5bob", MD5_USER_PASSWORD),
        ] {
            let conn = format!(
                "host=127.0.0.1 port={pg_port} user={user} password={password} dbname=postgres"
            );
            let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("{user} logs in through the proxy: {e}"));
            tokio::spawn(connection);
            let row = client
                .query_one("SELECT current_user::text", &[])
                .await
                .expect("query");
            assert_eq!(row.get::<_, String>(0), user);
        }
    });
    rec.signal(nix::sys::signal::Signal::SIGINT);
    let (status, stdout, stderr) = rec.wait(Duration::from_secs(30));
    assert!(status.success(), "record failed:\n{stdout}\n{stderr}");
    let mocks = std::fs::read_to_string(keploy.join("test-set-0/mocks.yaml")).expect("mocks");
    assert!(
        mocks.contains("current_user"),
        "the PG traffic was recorded"
    );

    for (what, secret) in p.all() {
        assert_nowhere(&keploy, what, secret);
    }
    assert_nowhere(&keploy, "SCRAM user's password", SCRAM_USER_PASSWORD);
    assert_nowhere(&keploy, "MD5 user's password", MD5_USER_PASSWORD);
    for hash in &stored_hashes {
        assert_nowhere(&keploy, "stored password hash", hash);
    }

    // The same token is the same placeholder in every test of the set.
    let token = "{{recplay.secret.access_token_1}}";
    let login = load(work.path(), 1);
    let body: Value = serde_json::from_str(&login.spec.resp.body.body).expect("login body");
    assert_eq!(body["access_token"], token);
    for n in [2, 4] {
        let me = load(work.path(), n);
        assert_eq!(
            me.spec.req.header["Authorization"],
            format!("Bearer {token}")
        );
        assert_eq!(
            me.spec.req.header["Cookie"],
            "session={{recplay.secret.cookie_session_1}}"
        );
        assert!(me.curl.contains(token), "{}", me.curl);
    }

    // Replay: without the values each test that needs one fails, naming
    // the placeholder and both ways to provide it.
    let config = include_str!("../../keploy.yml.template");
    std::fs::write(work.path().join("keploy.yml"), config).expect("keploy.yml");
    let target = served.url();
    let test = ["test", "--http-target", target.as_str(), "--delay", "5"];
    let missing = recplay(work.path(), &test, &[]);
    assert_ne!(missing.code, 0, "{}", missing.output);
    assert!(
        missing.output.contains("{{recplay.secret.password_1}}")
            && missing.output.contains("RECPLAY_SECRET_PASSWORD_1")
            && missing.output.contains("record.redact.secretsFile"),
        "{}",
        missing.output
    );

    // With them — half from the environment, half from the secrets file
    // keploy.yml names — every test passes against the checking app.
    let secrets = format!(
        "password_2: \"{}\"\ngithub_pat_1: \"{}\"\naws_access_token_1: \"{}\"\ncookie_session_1: \"{}\"\n",
        p.form_password, p.github, p.aws, p.session
    );
    std::fs::write(work.path().join("secrets.yaml"), secrets).expect("secrets file");
    std::fs::write(
        work.path().join("keploy.yml"),
        format!("{config}\nrecord:\n  redact:\n    secretsFile: secrets.yaml\n"),
    )
    .expect("keploy.yml");
    let env = env_of(&[
        ("RECPLAY_SECRET_PASSWORD_1", &p.password),
        ("RECPLAY_SECRET_ACCESS_TOKEN_1", &p.jwt),
        ("RECPLAY_SECRET_X_API_KEY_1", &p.api_key),
        ("RECPLAY_SECRET_API_KEY_1", &p.query_key),
    ]);
    let passed = recplay(work.path(), &test, &env);
    assert_eq!(passed.code, 0, "{}", passed.output);
    // The reports compare against placeholders, and hold none of the values.
    for (what, secret) in p.all() {
        if what != "jwt" && what != "session" {
            assert_nowhere(&keploy.join("test-set-0"), what, secret);
        }
    }
}
