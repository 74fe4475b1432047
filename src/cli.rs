//! Command-line flags, as clap parses them. A flag that keploy.yml can
//! also set is an `Option` here, so "not given" is told apart from "given
//! at its default value"; `config::resolve` turns these raw flags and
//! keploy.yml into the settings the commands use.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod units;

/// Record HTTP traffic and PostgreSQL exchanges once; replay them as tests,
/// with the database served from the recording and per-test coverage.
#[derive(Debug, Parser)]
#[command(name = "recplay", version, about, long_about = None)]
pub struct Cli {
    /// More logging: -v for debug, -vv for trace (RUST_LOG overrides).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Proxy HTTP and PostgreSQL traffic and record it into the next test set.
    Record(RecordArgs),
    /// Replay recorded test sets against the app and compare the responses.
    Test(TestArgs),
    /// Export per-test coverage or gate a build on it.
    #[command(subcommand)]
    Coverage(CoverageCommand),
    /// Work with replay reports (merge the shards of a CI run).
    #[command(subcommand)]
    Report(ReportCommand),
    /// Redact secrets in recorded test sets (recplay's or Keploy's) in place.
    Sanitize(SanitizeArgs),
}

/// Flags of `recplay sanitize`.
#[derive(Debug, Args)]
pub struct SanitizeArgs {
    /// A keploy directory, one test set, or one test or mocks file.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// keploy.yml whose `record.redact` rules apply [default: ./keploy.yml
    /// when present].
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Flags of `recplay record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Directory holding the test sets; each run creates the next test-set-N
    /// [default: keploy.yml's `path`/keploy, else ./keploy].
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,

    /// keploy.yml to read; flags given here override it.
    #[arg(long)]
    pub config: Option<PathBuf>,

    /// Address the HTTP proxy listens on.
    #[arg(long, default_value = "127.0.0.1:16789")]
    pub http_listen: SocketAddr,

    /// Where the app listens (http:// or https://). Without it only
    /// PostgreSQL is recorded.
    #[arg(long)]
    pub http_upstream: Option<String>,

    /// Certificate (PEM) to serve TLS on the HTTP listener.
    #[arg(long, requires = "http_tls_key")]
    pub http_tls_cert: Option<PathBuf>,

    /// Private key (PEM) for --http-tls-cert.
    #[arg(long, requires = "http_tls_cert")]
    pub http_tls_key: Option<PathBuf>,

    /// Extra CA certificate (PEM) to trust for an https:// upstream.
    #[arg(long)]
    pub upstream_ca: Option<PathBuf>,

    /// Largest body kept whole in a test file, in bytes; larger bodies keep
    /// their size and sha256 only.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    pub body_cap: u64,

    /// Address the PostgreSQL proxy listens on.
    #[arg(long, default_value = "127.0.0.1:16432")]
    pub pg_listen: SocketAddr,

    /// The real PostgreSQL server (HOST:PORT). Without it only HTTP is recorded.
    #[arg(long)]
    pub pg_upstream: Option<String>,

    /// Certificate (PEM) to accept TLS from PostgreSQL clients.
    #[arg(long, requires = "pg_tls_key")]
    pub pg_tls_cert: Option<PathBuf>,

    /// Private key (PEM) for --pg-tls-cert.
    #[arg(long, requires = "pg_tls_cert")]
    pub pg_tls_key: Option<PathBuf>,

    /// Speak TLS to the PostgreSQL server.
    #[arg(long)]
    pub pg_upstream_tls: bool,

    /// Start the app with `sh -c CMD`; it is stopped when recording ends
    /// [default: keploy.yml's `command`].
    #[arg(short = 'c', long = "command")]
    pub command: Option<String>,

    /// Record the app's outgoing calls to URL as Http mocks: recplay
    /// listens on a local port and sets RECPLAY_EGRESS_<NAME>_URL to it in
    /// the app's environment (repeatable: NAME=URL).
    #[arg(long, value_name = "NAME=URL")]
    pub egress: Vec<String>,

    /// Record the app's plain-http outgoing calls through a forward proxy
    /// (HTTP_PROXY/http_proxy set in the app's environment).
    #[arg(long)]
    pub egress_proxy: bool,

    /// Seconds in-flight exchanges get to finish after SIGINT/SIGTERM.
    #[arg(long, default_value_t = 10)]
    pub grace: u64,

    /// Allow --http-listen/--pg-listen on an address other than loopback.
    /// Recorded traffic may include secrets; anyone who can reach the
    /// address can put traffic into the recording.
    #[arg(long)]
    pub allow_remote: bool,

    /// HTTP client connections served at once; one more gets 503 with
    /// Retry-After: 1.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub http_max_connections: u64,

    /// Time a client has to send a request's headers (e.g. 30s, 500ms).
    #[arg(long, default_value = "30s", value_parser = units::duration)]
    pub http_header_timeout: Duration,

    /// A keep-alive connection that moves no byte for this long is closed.
    #[arg(long, default_value = "75s", value_parser = units::duration)]
    pub http_idle_timeout: Duration,

    /// Time the app has to start answering; past it the client gets 504.
    #[arg(long, default_value = "60s", value_parser = units::duration)]
    pub http_response_timeout: Duration,

    /// Largest request line and headers (e.g. 64KiB, at least 8KiB); a
    /// larger request gets 431.
    #[arg(long, default_value = "64KiB", value_parser = units::bytes)]
    pub http_max_header_bytes: usize,

    /// PostgreSQL client connections served at once; one more gets
    /// FATAL 53300 (too_many_connections).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub pg_max_connections: u64,
}

/// Flags of `recplay test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Directory holding the test sets [default: keploy.yml's
    /// `path`/keploy, else ./keploy].
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,

    /// keploy.yml to read (noise); flags given here override it.
    #[arg(long)]
    pub config: Option<PathBuf>,

    /// Where the app listens during replay.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub http_target: String,

    /// Start the app with `sh -c CMD` and stop it at the end [default:
    /// keploy.yml's `command`].
    #[arg(short = 'c', long = "command")]
    pub command: Option<String>,

    /// URL that answers 2xx once the app is ready (default: keploy.yml's
    /// `test.healthUrl`, else wait for the target port to accept).
    #[arg(long)]
    pub health_url: Option<String>,

    /// Seconds to wait for readiness; when no readiness check applies, a
    /// fixed delay before the first request [default: keploy.yml's
    /// `test.delay`, else 60].
    #[arg(long, value_name = "SECS")]
    pub delay: Option<u64>,

    /// Test sets to replay by folder name, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub test_sets: Vec<String>,

    /// Write a JUnit XML report here too.
    #[arg(long)]
    pub junit: Option<PathBuf>,

    /// Seconds to wait for each response [default: keploy.yml's
    /// `test.apiTimeout`, else 30].
    #[arg(long, value_name = "SECS")]
    pub api_timeout: Option<u64>,

    /// Serve the app's database from mocks.yaml on this address.
    #[arg(long)]
    pub pg_listen: Option<SocketAddr>,

    /// Serve the app's outgoing calls to NAME from the set's Http mocks on
    /// a local port set in RECPLAY_EGRESS_<NAME>_URL (repeatable: NAME=URL,
    /// the same routes as at record; URL is what --no-mocks reaches).
    #[arg(long, value_name = "NAME=URL")]
    pub egress: Vec<String>,

    /// Serve plain-http outgoing calls through a forward proxy
    /// (HTTP_PROXY/http_proxy set in the app's environment).
    #[arg(long)]
    pub egress_proxy: bool,

    /// No mock servers: the app reaches the real database and services, so
    /// the test set runs as an integration test [default: keploy.yml's
    /// `test.mocking`, else mocks on].
    #[arg(long)]
    pub no_mocks: bool,

    /// Collect per-test coverage from agents in the app's processes.
    #[arg(long)]
    pub coverage: bool,

    /// Replay each test twice and propose noise entries for what differs.
    #[arg(long)]
    pub detect_noise: bool,

    /// How the PostgreSQL mock server matches queries. `collapse-literals`
    /// is deliberately wrong (literals normalised away, the first recording
    /// served for every variant): it exists only to prove that the test
    /// suite catches the bind-collapse regression. Hidden from help.
    #[arg(long, value_enum, default_value_t = PgMatcher::Exact, hide = true)]
    pub pg_matcher: PgMatcher,

    /// Replay only shard I of N (1-based, like GitLab's CI_NODE_INDEX):
    /// every runner computes the same disjoint share; `recplay report
    /// merge` joins the shards' reports [default: CI_NODE_INDEX and
    /// CI_NODE_TOTAL when set].
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::shard::ShardSpec>,

    /// Number of shards when the index comes from a Kubernetes Indexed
    /// Job's JOB_COMPLETION_INDEX (0-based).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub shard_total: Option<u64>,
}

/// Values of the hidden `--pg-matcher` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PgMatcher {
    /// Literals and Bind values are part of a query's identity.
    Exact,
    /// The bind-collapse regression, on purpose (tests only).
    CollapseLiterals,
}

impl From<PgMatcher> for recplay_proxy::pg::matcher::MatchStrategy {
    fn from(m: PgMatcher) -> Self {
        match m {
            PgMatcher::Exact => Self::Exact,
            PgMatcher::CollapseLiterals => Self::CollapseLiterals,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum CoverageCommand {
    /// Write a run's coverage as Cobertura XML, LCOV or coverage.py JSON.
    Export(ExportArgs),
    /// Pass or fail a build on its coverage against a floor and a baseline.
    Gate(GateArgs),
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Combine the reports of `recplay test --shard I/N` runs into one run.
    Merge(MergeArgs),
}

/// Flags of `recplay report merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Folders holding the shards' run reports (each shard's
    /// `reports/test-run-N`, or any folder above them, searched).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Keploy directory whose `reports/` receives the merged run.
    #[arg(long, default_value = "keploy")]
    pub path: PathBuf,
    /// Write the merged JUnit XML here too.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Cobertura,
    Lcov,
    Json,
}

/// Flags of `recplay coverage export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Directory holding the test sets and reports.
    #[arg(long, default_value = "keploy")]
    pub path: PathBuf,
    /// Which run (test-run-N); default: the latest.
    #[arg(long)]
    pub run: Option<String>,
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Output file.
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GatePolicy {
    Absolute,
    Baseline,
    Both,
}

/// Flags of `recplay coverage gate`.
#[derive(Debug, Args)]
pub struct GateArgs {
    /// Directory holding the test sets and reports.
    #[arg(long, default_value = "keploy")]
    pub path: PathBuf,
    /// Which run (test-run-N); default: the latest.
    #[arg(long)]
    pub run: Option<String>,
    #[arg(long, value_enum, default_value = "both")]
    pub policy: GatePolicy,
    /// Lowest acceptable line coverage, in percent.
    #[arg(long, default_value_t = 80.0)]
    pub floor: f64,
    /// Drop below the baseline tolerated, in percentage points.
    #[arg(long, default_value_t = 0.5)]
    pub epsilon: f64,
    /// File holding the ratchet baseline (created on the first run).
    #[arg(long, default_value = "keploy/coverage-baseline.json")]
    pub baseline: PathBuf,
    /// Markdown report to write.
    #[arg(long, default_value = "keploy/coverage-report.md")]
    pub report: PathBuf,
    /// Fail when coverage cannot be measured (default: pass with a warning).
    #[arg(long)]
    pub fail_closed: bool,
}

#[cfg(test)]
mod pg_matcher_tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn pg_matcher_is_hidden_and_defaults_to_exact() {
        let cli = Cli::try_parse_from(["recplay", "test"]).expect("parses");
        let Command::Test(args) = cli.command else {
            panic!("not the test command")
        };
        assert_eq!(args.pg_matcher, PgMatcher::Exact);
        let cli = Cli::try_parse_from(["recplay", "test", "--pg-matcher", "collapse-literals"])
            .expect("parses");
        let Command::Test(args) = cli.command else {
            panic!("not the test command")
        };
        assert_eq!(args.pg_matcher, PgMatcher::CollapseLiterals);
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("test")
            .expect("test subcommand")
            .render_long_help()
            .to_string();
        assert!(!help.contains("pg-matcher"), "the flag must stay hidden");
    }
}
