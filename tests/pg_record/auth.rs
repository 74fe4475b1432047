//! Authentication passes through (SCRAM-SHA-256 and MD5) and never reaches
//! mocks.yaml.

use recplay_proxy::testset::pg_mock::{FrontendMsg, Lifetime};

use super::{connect, sqlstate, Recording};
use crate::support::pg::{PgCluster, TcpAuth};

const SCRAM_PASSWORD: &str = "alice-pw-s3cret";
const MD5_PASSWORD: &str = "bob-pw-s3cret";

fn conn(port: u16, user: &str, password: &str) -> String {
    format!("host=127.0.0.1 port={port} user={user} password={password} dbname=postgres")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_and_md5_users_log_in_and_no_secret_is_written() {
    let pg = PgCluster::start_with(TcpAuth::Passwords);
    pg.psql(&format!(
        "SET password_encryption = 'scram-sha-256'; CREATE ROLE alice LOGIN PASSWORD '{SCRAM_PASSWORD}'; \
         SET password_encryption = 'md5'; CREATE ROLE md5bob LOGIN PASSWORD '{MD5_PASSWORD}'"
    ));
    let rec = Recording::start(&pg.addr()).await;
    let port = rec.addr.port();

    for (user, password) in [("alice", SCRAM_PASSWORD), ("md5bob", MD5_PASSWORD)] {
        connect(&conn(pg.port, user, password)).await;
        let client = connect(&conn(port, user, password)).await;
        let row = client
            .query_one("SELECT current_user::text", &[])
            .await
            .expect("query");
        assert_eq!(row.get::<_, String>(0), user);
        // A wrong password fails the same way through the proxy as without.
        let direct = tokio_postgres::connect(&conn(pg.port, user, "wrong"), tokio_postgres::NoTls)
            .await
            .err()
            .expect("direct login fails");
        let through = tokio_postgres::connect(&conn(port, user, "wrong"), tokio_postgres::NoTls)
            .await
            .err()
            .expect("login through the proxy fails");
        assert_eq!(sqlstate(&through), sqlstate(&direct));
        assert_eq!(sqlstate(&through), "28P01");
    }
    // Everything a client received is journaled already; the journal holds
    // no secret either.
    let journal = String::from_utf8_lossy(&rec.journal()).into_owned();
    let recorded = rec.finish().await;

    for secret in [
        SCRAM_PASSWORD,
        MD5_PASSWORD,
        "SCRAM-SHA-256",
        "n,,n=",
        "c=biws",
    ] {
        assert!(
            !recorded.raw.contains(secret),
            "mocks.yaml contains {secret:?}"
        );
        assert!(!journal.contains(secret), "the journal contains {secret:?}");
    }
    let md5_hash = regex::Regex::new("md5[0-9a-f]{32}").expect("regex");
    assert!(
        !md5_hash.is_match(&recorded.raw),
        "mocks.yaml contains an MD5 hash"
    );
    assert!(
        !md5_hash.is_match(&journal),
        "the journal contains an MD5 hash"
    );

    // Each successful login left a start-up mock (failed logins leave none).
    let startups: Vec<_> = recorded
        .mocks
        .iter()
        .filter(|m| m.spec.position == 0)
        .collect();
    assert_eq!(startups.len(), 2);
    for (m, user) in startups.iter().zip(["alice", "md5bob"]) {
        assert_eq!(m.spec.lifetime, Lifetime::Session);
        assert_eq!(m.spec.startup.get("user").map(String::as_str), Some(user));
        assert_eq!(m.spec.requests.len(), 1);
        assert!(matches!(m.spec.requests[0], FrontendMsg::Startup { .. }));
    }
    assert_eq!(recorded.running("SELECT current_user::text").len(), 2);
}
