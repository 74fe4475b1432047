//! Integration tests: one binary, a module per flow.

mod support;

mod coverage;
mod egress;
mod replay;

mod cluster {
    use crate::support::pg::PgCluster;

    #[test]
    fn a_throwaway_cluster_starts_and_answers() {
        let pg = PgCluster::start();
        assert_eq!(pg.psql("SELECT 40 + 2").trim(), "42");
    }
}

mod falsification;
mod http_record;
mod keploy_mocks;
mod keploy_v3;
mod pg_record;
mod pg_replay;
mod recorded_formats;
mod secrets;
mod shard;
