//! The settings a command runs with, resolved once: a flag given on the
//! command line wins, then keploy.yml, then recplay's default.
//!
//! Flags that keploy.yml can also set arrive as `Option`s (see `cli`), so
//! a flag given at its default value (`--delay 60`) still wins over
//! keploy.yml: comparing a value with its default cannot tell "given"
//! from "left out".

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use recplay_proxy::egress::EgressRoute;
use recplay_proxy::http::limits::{HttpLimits, MIN_HEADER_BYTES};

use recplay_proxy::testset::redact::RedactConfig;

use super::{ConfigFile, GlobalNoise, KeployConfig, RedactSection};
use crate::cli::{PgMatcher, RecordArgs, TestArgs};

/// The keploy directory when neither `--path` nor keploy.yml names one.
pub const DEFAULT_KEPLOY_DIR: &str = "keploy";
/// Seconds to wait for the app to get ready (`--delay`, `test.delay`).
pub const DEFAULT_DELAY_SECS: u64 = 60;
/// Seconds to wait for each response (`--api-timeout`, `test.apiTimeout`).
pub const DEFAULT_API_TIMEOUT_SECS: u64 = 30;

/// `recplay record`, resolved.
#[derive(Debug)]
pub struct RecordConfig {
    /// The keploy directory test sets are created in.
    pub path: PathBuf,
    pub command: Option<String>,
    /// Seconds the app gets to accept on the upstream port (keploy.yml
    /// `test.delay`; `record` has no flag for it).
    pub delay: u64,
    pub http_listen: SocketAddr,
    pub http_upstream: Option<String>,
    pub http_tls_cert: Option<PathBuf>,
    pub http_tls_key: Option<PathBuf>,
    pub upstream_ca: Option<PathBuf>,
    pub body_cap: u64,
    pub pg_listen: SocketAddr,
    pub pg_upstream: Option<String>,
    pub pg_tls_cert: Option<PathBuf>,
    pub pg_tls_key: Option<PathBuf>,
    pub pg_upstream_tls: bool,
    pub grace: u64,
    /// What one HTTP client may cost the proxy (`--http-max-connections`,
    /// the `--http-*-timeout`s, `--http-max-header-bytes`).
    pub http_limits: HttpLimits,
    pub pg_max_connections: usize,
    /// Listeners may bind a non-loopback address (`--allow-remote`).
    pub allow_remote: bool,
    /// `--egress` routes.
    pub egress: Vec<EgressRoute>,
    pub egress_proxy: bool,
    /// keploy.yml's noise, applied by `recplay test`; record only reports it.
    pub global_noise: GlobalNoise,
    /// keploy.yml `record.redact`.
    pub redact: RedactConfig,
}

/// `recplay test`, resolved.
#[derive(Debug)]
pub struct TestConfig {
    /// The keploy directory holding the test sets and reports.
    pub path: PathBuf,
    pub command: Option<String>,
    pub http_target: String,
    pub health_url: Option<String>,
    pub delay: u64,
    pub test_sets: Vec<String>,
    pub junit: Option<PathBuf>,
    pub api_timeout: u64,
    pub pg_listen: Option<SocketAddr>,
    pub coverage: bool,
    pub detect_noise: bool,
    pub pg_matcher: PgMatcher,
    /// `--egress` routes.
    pub egress: Vec<EgressRoute>,
    pub egress_proxy: bool,
    /// False with `--no-mocks` or keploy.yml's `test.mocking: false`: no
    /// mock server, the app reaches the real services.
    pub mocking: bool,
    pub global_noise: GlobalNoise,
    /// The keploy.yml read, to name in errors about its noise.
    pub config_file: Option<PathBuf>,
    /// keploy.yml `record.redact.secretsFile`, relative to keploy.yml.
    pub secrets_file: Option<PathBuf>,
    /// keploy.yml `record.redact`, for tests recovered from a crashed
    /// recording's journal.
    pub redact: RedactConfig,
}

impl RecordConfig {
    /// Whether outgoing calls are recorded (then nothing else need be).
    pub fn records_egress(&self) -> bool {
        !self.egress.is_empty() || self.egress_proxy
    }

    pub fn resolve(args: RecordArgs) -> Result<Self> {
        let file = KeployConfig::locate(args.config.as_deref());
        let config = load(file.as_deref())?;
        check_listen("--http-listen", args.http_listen, args.allow_remote)?;
        if args.pg_upstream.is_some() {
            check_listen("--pg-listen", args.pg_listen, args.allow_remote)?;
        }
        if args.http_max_header_bytes < MIN_HEADER_BYTES {
            bail!(
                "--http-max-header-bytes {} is below the smallest request head buffer \
                 of {MIN_HEADER_BYTES} bytes; give 8KiB or more",
                args.http_max_header_bytes
            );
        }
        let http_limits = HttpLimits {
            max_connections: usize::try_from(args.http_max_connections).unwrap_or(usize::MAX),
            header_timeout: args.http_header_timeout,
            idle_timeout: args.http_idle_timeout,
            response_timeout: args.http_response_timeout,
            max_header_bytes: args.http_max_header_bytes,
        };
        Ok(RecordConfig {
            path: keploy_dir(args.path, config.path.as_deref(), file.as_deref()),
            command: args.command.or_else(|| non_empty(config.command)),
            delay: config.test.delay.unwrap_or(DEFAULT_DELAY_SECS),
            http_listen: args.http_listen,
            http_upstream: args.http_upstream,
            http_tls_cert: args.http_tls_cert,
            http_tls_key: args.http_tls_key,
            upstream_ca: args.upstream_ca,
            body_cap: args.body_cap,
            pg_listen: args.pg_listen,
            pg_upstream: args.pg_upstream,
            pg_tls_cert: args.pg_tls_cert,
            pg_tls_key: args.pg_tls_key,
            pg_upstream_tls: args.pg_upstream_tls,
            grace: args.grace,
            http_limits,
            pg_max_connections: usize::try_from(args.pg_max_connections).unwrap_or(usize::MAX),
            allow_remote: args.allow_remote,
            egress: egress_routes(&args.egress)?,
            egress_proxy: args.egress_proxy,
            global_noise: config.test.global_noise,
            redact: redact_config(&config.record.redact, file.as_deref()),
        })
    }
}

/// A listener off loopback needs `--allow-remote`, and gets a warning even
/// then: whoever can reach it can read what the app answers and put
/// traffic into the recording.
fn check_listen(flag: &str, addr: SocketAddr, allow_remote: bool) -> Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if !allow_remote {
        bail!(
            "{flag} {addr} is not a loopback address; recplay listens on 127.0.0.1 unless \
             --allow-remote is given (recorded traffic may include secrets)"
        );
    }
    tracing::warn!(
        "{flag} {addr} accepts connections from other machines (--allow-remote): recorded \
         traffic may include secrets such as passwords, tokens and cookies; review the \
         test set before sharing it"
    );
    Ok(())
}

impl TestConfig {
    pub fn resolve(args: TestArgs) -> Result<Self> {
        let file = KeployConfig::locate(args.config.as_deref());
        let config = load(file.as_deref())?;
        Ok(TestConfig {
            path: keploy_dir(args.path, config.path.as_deref(), file.as_deref()),
            command: args.command.or_else(|| non_empty(config.command)),
            http_target: args.http_target,
            health_url: args
                .health_url
                .or_else(|| non_empty(config.test.health_url)),
            delay: args
                .delay
                .or(config.test.delay)
                .unwrap_or(DEFAULT_DELAY_SECS),
            test_sets: args.test_sets,
            junit: args.junit,
            api_timeout: args
                .api_timeout
                .or(config.test.api_timeout)
                .unwrap_or(DEFAULT_API_TIMEOUT_SECS),
            pg_listen: args.pg_listen,
            coverage: args.coverage,
            detect_noise: args.detect_noise,
            pg_matcher: args.pg_matcher,
            egress: egress_routes(&args.egress)?,
            egress_proxy: args.egress_proxy,
            mocking: !args.no_mocks && config.test.mocking.unwrap_or(true),
            global_noise: config.test.global_noise,
            secrets_file: secrets_file(&config.record.redact, file.as_deref()),
            redact: redact_settings(&config.record.redact),
            config_file: file,
        })
    }
}

/// `record.redact` for the redactor; every default rule turned off is
/// named in a warning, since what it guarded is then recorded in clear.
pub fn redact_config(section: &RedactSection, file: Option<&Path>) -> RedactConfig {
    let config = redact_settings(section);
    let shown = file.map_or("keploy.yml".into(), |f| f.display().to_string());
    let unknown = config.unknown_disabled();
    for name in &config.disable {
        if unknown.contains(name) {
            tracing::warn!(
                "{shown}: record.redact.disable names {name:?}, which is no default rule; known: all, {}",
                recplay_proxy::testset::redact::default_rule_names().join(", ")
            );
        } else {
            tracing::warn!(
                "{shown}: redaction rule {name:?} is disabled: what it matches is recorded in clear"
            );
        }
    }
    config
}

/// `record.redact` as it is, without the warnings: `recplay test` uses it
/// only for tests recovered from a crashed recording.
fn redact_settings(section: &RedactSection) -> RedactConfig {
    RedactConfig {
        headers: section.headers.clone(),
        body: section.body.clone(),
        patterns: section
            .patterns
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        disable: section.disable.clone(),
    }
}

/// `record.redact.secretsFile`, relative to the directory of keploy.yml.
fn secrets_file(section: &RedactSection, file: Option<&Path>) -> Option<PathBuf> {
    let name = non_empty(section.secrets_file.clone())?;
    let path = PathBuf::from(name);
    if path.is_absolute() {
        return Some(path);
    }
    let base = file.and_then(Path::parent).unwrap_or(Path::new(""));
    Some(base.join(path))
}

/// `--egress NAME=URL` values, parsed.
fn egress_routes(values: &[String]) -> Result<Vec<EgressRoute>> {
    values
        .iter()
        .map(|v| EgressRoute::parse(v).with_context(|| format!("--egress {v}")))
        .collect()
}

fn load(file: Option<&Path>) -> Result<KeployConfig> {
    match file {
        Some(f) => KeployConfig::load(f),
        None => Ok(KeployConfig::default()),
    }
}

/// Keploy writes `""` for a setting it leaves unset.
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// `--path` names the keploy directory itself. keploy.yml's `path` is, as
/// in Keploy, the folder that holds `keploy/`, relative to the working
/// directory; `""` (what Keploy writes) is the working directory.
///
/// recplay's own template once wrote `path: "./keploy"`, meaning the
/// keploy directory itself. Such a value (its last part is `keploy` and
/// it holds no `keploy/` of its own) keeps that meaning, with a warning
/// saying what to write instead.
fn keploy_dir(flag: Option<PathBuf>, from_file: Option<&str>, file: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir;
    }
    let holder = match from_file.map(str::trim) {
        None | Some("") => return PathBuf::from(DEFAULT_KEPLOY_DIR),
        Some(p) => Path::new(p),
    };
    let inside = holder.join(DEFAULT_KEPLOY_DIR);
    let names_keploy_itself = holder.file_name().is_some_and(|n| n == DEFAULT_KEPLOY_DIR);
    if names_keploy_itself && !inside.is_dir() {
        let shown = file.map_or("keploy.yml".into(), |f| f.display().to_string());
        tracing::warn!(
            "{shown}: `path: {}` is read as the keploy directory itself, as earlier recplay versions did; \
             keploy.yml's `path` is the folder that holds keploy/ (Keploy's meaning), so write `path: \"{}\"` instead",
            holder.display(),
            holder.parent().map_or(String::new(), |p| p.display().to_string()),
        );
        return holder.to_path_buf();
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    /// Parses `recplay test <flags>` and resolves it against `yml` in a
    /// fresh directory (relative keploy paths are checked with `cwd`).
    fn test_config(yml: &str, flags: &[&str]) -> TestConfig {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("keploy.yml");
        std::fs::write(&file, yml).expect("write");
        let file = file.to_string_lossy().into_owned();
        let mut argv = vec!["recplay", "test", "--config", file.as_str()];
        argv.extend_from_slice(flags);
        let Command::Test(args) = Cli::try_parse_from(argv).expect("parses").command else {
            panic!("not the test command")
        };
        TestConfig::resolve(args).expect("resolves")
    }

    fn record_config(yml: &str, flags: &[&str]) -> RecordConfig {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("keploy.yml");
        std::fs::write(&file, yml).expect("write");
        let file = file.to_string_lossy().into_owned();
        let mut argv = vec!["recplay", "record", "--config", file.as_str()];
        argv.extend_from_slice(flags);
        let Command::Record(args) = Cli::try_parse_from(argv).expect("parses").command else {
            panic!("not the record command")
        };
        RecordConfig::resolve(args).expect("resolves")
    }

    /// Every setting both keploy.yml and a flag of `recplay test` can set.
    const TEST_YML: &str = "path: elsewhere\ncommand: from-yml\ntest:\n  delay: 7\n  apiTimeout: 9\n  healthUrl: http://yml/health\n";

    #[test]
    fn keploy_yml_wins_over_the_defaults() {
        let c = test_config(TEST_YML, &[]);
        assert_eq!(c.path, Path::new("elsewhere/keploy"));
        assert_eq!(c.command.as_deref(), Some("from-yml"));
        assert_eq!(c.delay, 7);
        assert_eq!(c.api_timeout, 9);
        assert_eq!(c.health_url.as_deref(), Some("http://yml/health"));
        let r = record_config(TEST_YML, &[]);
        assert_eq!(r.path, Path::new("elsewhere/keploy"));
        assert_eq!(r.command.as_deref(), Some("from-yml"));
        assert_eq!(r.delay, 7);
    }

    #[test]
    fn a_flag_given_at_its_default_value_wins_over_keploy_yml() {
        let c = test_config(
            TEST_YML,
            &[
                "--path",
                DEFAULT_KEPLOY_DIR,
                "--delay",
                "60",
                "--api-timeout",
                "30",
                "-c",
                "from-flag",
                "--health-url",
                "http://flag/health",
            ],
        );
        assert_eq!(c.path, Path::new(DEFAULT_KEPLOY_DIR));
        assert_eq!(c.delay, DEFAULT_DELAY_SECS);
        assert_eq!(c.api_timeout, DEFAULT_API_TIMEOUT_SECS);
        assert_eq!(c.command.as_deref(), Some("from-flag"));
        assert_eq!(c.health_url.as_deref(), Some("http://flag/health"));
        let r = record_config(TEST_YML, &["--path", DEFAULT_KEPLOY_DIR, "-c", "from-flag"]);
        assert_eq!(r.path, Path::new(DEFAULT_KEPLOY_DIR));
        assert_eq!(r.command.as_deref(), Some("from-flag"));
    }

    #[test]
    fn without_either_the_defaults_apply() {
        let c = test_config("{}\n", &[]);
        assert_eq!(c.path, Path::new(DEFAULT_KEPLOY_DIR));
        assert_eq!(c.command, None);
        assert_eq!(c.delay, DEFAULT_DELAY_SECS);
        assert_eq!(c.api_timeout, DEFAULT_API_TIMEOUT_SECS);
        assert_eq!(c.health_url, None);
    }

    /// What Keploy writes for "unset" is unset here too.
    #[test]
    fn keploys_empty_strings_mean_unset() {
        let c = test_config("path: \"\"\ncommand: \"\"\ntest:\n  healthUrl: \"\"\n", &[]);
        assert_eq!(c.path, Path::new(DEFAULT_KEPLOY_DIR));
        assert_eq!(c.command, None);
        assert_eq!(c.health_url, None);
    }

    #[test]
    fn record_redact_is_read_and_the_secrets_file_is_next_to_keploy_yml() {
        let yml = "record:\n  redact:\n    headers: [X-Session]\n    body: [ssn]\n    patterns:\n      internal: 'ik_[a-z]{4}'\n    disable: [cookie]\n    secretsFile: s.yaml\n";
        let r = record_config(yml, &[]);
        assert_eq!(r.redact.headers, ["X-Session"]);
        assert_eq!(r.redact.body, ["ssn"]);
        assert_eq!(
            r.redact.patterns,
            [("internal".to_string(), "ik_[a-z]{4}".to_string())]
        );
        assert_eq!(r.redact.disable, ["cookie"]);
        let c = test_config(yml, &[]);
        let file = c.secrets_file.expect("secrets file");
        assert_eq!(file.file_name().and_then(|n| n.to_str()), Some("s.yaml"));
        assert_eq!(
            file.parent(),
            c.config_file.as_deref().and_then(Path::parent),
            "relative to keploy.yml"
        );
        assert!(test_config("{}\n", &[]).secrets_file.is_none());
    }

    #[test]
    fn a_path_ending_in_keploy_without_a_keploy_inside_is_the_keploy_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let legacy = dir.path().join("keploy");
        assert_eq!(
            keploy_dir(None, legacy.to_str(), None),
            legacy,
            "the old meaning"
        );
        std::fs::create_dir_all(legacy.join("keploy")).expect("mkdir");
        assert_eq!(
            keploy_dir(None, legacy.to_str(), None),
            legacy.join("keploy"),
            "Keploy's meaning, when its keploy/ exists"
        );
        assert_eq!(
            keploy_dir(Some("mine".into()), legacy.to_str(), None),
            Path::new("mine")
        );
    }
}
