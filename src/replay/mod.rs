//! `recplay test`: replay recorded test sets against the app.
//!
//! - `request`: recorded request → wire request; response → [`ActualResponse`].
//! - `observer`: hooks for the parts that ride along (mock database, coverage).
//! - `outcome`: per-test and per-set results handed to the reports.
//! - `detect_noise`: `--detect-noise` proposals.
//! - `egress`: the app's outgoing HTTP calls served from the set's Http mocks.
//!
//! With `--shard I/N`, `load_sets` keeps only this runner's share (see
//! `crate::shard`) and the run report records the shard for `report merge`.
//!
//! For each test set: load it (every problem named), start the app with
//! the observers' environment, wait until it is ready, replay every test in
//! recorded order, compare, stop the app, write the set's report. Exit code
//! 0 when everything passed, 1 when anything failed; errors that stop the
//! run (no test sets, a bad config, an app that never got ready) surface as
//! `Err`, which main turns into exit code 2.

pub mod detect_noise;
pub mod egress;
pub mod observer;
pub mod observers;
pub mod outcome;
pub mod request;
pub mod secrets;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use recplay_proxy::pg::matcher::Index;
use recplay_proxy::testset::store::list_test_sets;
use recplay_proxy::testset::store::{read_test, ReadTest};
use recplay_proxy::testset::HttpTestCase;
use recplay_proxy::window::TestWindows;

use crate::app::{wait_ready, AppProcess, Readiness};
use crate::cli::TestArgs;
use crate::compare::noise::{origin_of, with_test_noise, ConfigNoise, NoiseRules};
use crate::compare::{compare, ActualResponse};
use crate::config::resolve::TestConfig;
use crate::report;
use crate::shard::{ShardRecord, ShardSpec};
use observer::{ExtraFields, Repeat, ReplayObserver, ReplaySet};
use observers::ObserverContext;
use outcome::{SetOutcome, TestOutcome, TestTally};
use request::{Replayer, Target};

/// Grace the app gets between SIGTERM and SIGKILL at the end of a set.
const APP_STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs `recplay test`. SIGINT or SIGTERM ends the run at once: dropping
/// the run drops the app process, which kills its process group.
///
/// Replay is strictly sequential, so it runs on a single-threaded runtime
/// of its own: the client's connection task and the loop that waits on it
/// share one thread, and each exchange costs no cross-thread wake-up (on a
/// busy CI machine that halves the time per test).
pub async fn run(args: TestArgs) -> Result<ExitCode> {
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("could not start the replay runtime")?;
        runtime.block_on(async {
            // Registered before the app can start, so no signal slips past.
            let mut signals = crate::signals::StopSignals::watch()?;
            tokio::select! {
                result = run_to_end(args) => result,
                // Leaving the select drops the run, and with it the app,
                // whose drop returns once the app's group is gone.
                name = signals.next() => Err(anyhow::anyhow!(
                    "interrupted by {name}; the app was stopped and this run's reports are incomplete"
                )),
            }
        })
    })
    .await
    .context("the replay thread stopped unexpectedly")?
}

async fn run_to_end(mut args: TestArgs) -> Result<ExitCode> {
    let shard = ShardSpec::resolve(
        args.shard.take(),
        args.shard_total
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        |name| std::env::var(name).ok(),
    )?;
    let args = TestConfig::resolve(args)?;
    crate::recover::recover(&args.path, &args.redact)?;
    let noise =
        ConfigNoise::from_config(&args.global_noise, &origin_of(args.config_file.as_deref()))?;
    let target = Target::parse(&args.http_target)?;
    let loading = std::time::Instant::now();
    let (sets, shard) = load_sets(&args.path, &args.test_sets, shard.as_ref())?;
    tracing::debug!(elapsed = ?loading.elapsed(), "loaded the test sets");

    let windows = TestWindows::new();
    let observers = observers::observers_for(&ObserverContext {
        args: &args,
        windows: &windows,
    })
    .await?;
    let run_dir = report::next_run_dir(&args.path)?;
    let secrets = secrets::Secrets::load(args.secrets_file.as_deref())?;
    let replayer = Replayer::new(
        target.clone(),
        Duration::from_secs(args.api_timeout.max(1)),
        secrets,
    );
    let total: usize = sets.iter().map(|s| s.test_files.len()).sum();
    // JUnit is wanted for --junit, and in a shard's run directory for
    // `report merge`; its rows are written as the tests finish.
    let mut junit_rows = if args.junit.is_some() || shard.is_some() {
        Some(report::junit::Rows::create(&run_dir)?)
    } else {
        None
    };
    let bar = report::terminal::progress(total);
    let mut outcomes = Vec::new();
    let mut proposals = BTreeMap::new();

    for set in sets {
        let set_noise = noise.for_set(&set.name).clone();
        bar.set_message(set.name.clone());
        let ctx = SetRun {
            args: &args,
            target: &target,
            replayer: &replayer,
            observers: &observers,
            windows: &windows,
            bar: &bar,
            run_dir: &run_dir,
        };
        let replaying = std::time::Instant::now();
        let (outcome, proposal, entries) =
            ctx.run_set(set, &set_noise, junit_rows.as_mut()).await?;
        tracing::debug!(elapsed = ?replaying.elapsed(), set = %outcome.name, "replayed");
        let writing = std::time::Instant::now();
        report::yaml::write_streamed_set_report(&run_dir, &outcome, entries)?;
        tracing::debug!(elapsed = ?writing.elapsed(), set = %outcome.name, "wrote the report");
        if let Some(p) = proposal {
            proposals.insert(outcome.name.clone(), p);
        }
        outcomes.push(outcome);
    }
    bar.finish_and_clear();

    let mut run_extra = ExtraFields::new();
    for o in &observers {
        match o.after_run().await {
            Ok(fields) => run_extra.extend(fields),
            Err(e) => {
                tracing::warn!("{}: {e:#}", o.name());
                run_extra.insert(
                    format!("{}_error", o.name()),
                    serde_yaml::Value::String(format!("{e:#}")),
                );
            }
        }
    }
    if let Some(shard) = &shard {
        // `report merge` reads the shard and its JUnit from the run directory.
        run_extra.insert(
            "shard".into(),
            serde_yaml::to_value(shard).context("could not encode the shard")?,
        );
    }
    if let (Some(_), Some(rows)) = (&shard, &mut junit_rows) {
        report::junit::write(&run_dir.join(report::junit::FILE_NAME), &outcomes, rows)?;
    }
    report::yaml::write_run_report(&run_dir, &outcomes, &run_extra)?;
    if let (Some(junit), Some(rows)) = (&args.junit, &mut junit_rows) {
        report::junit::write(junit, &outcomes, rows)?;
    }
    // Removes the rows' file.
    drop(junit_rows);
    print!(
        "{}",
        report::terminal::render_run(&outcomes, report::terminal::Palette::detect())
    );
    println!("reports: {}", run_dir.display());
    if args.detect_noise {
        match detect_noise::render(&proposals) {
            Some(text) => {
                let path = run_dir.join("noise-proposal.yaml");
                recplay_proxy::testset::store::write_atomically(&path, text.as_bytes())
                    .with_context(|| format!("could not write {}", path.display()))?;
                println!(
                    "\nThese fields changed between two replays of the same test; to ignore them, add to keploy.yml (also in {}):\n{text}",
                    path.display()
                );
            }
            None => println!("\nNo field changed between two replays of the same test."),
        }
    }
    let all_passed = outcomes.iter().all(SetOutcome::passed);
    Ok(if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Lists and loads the selected test sets, naming every file that did not
/// load (those count as failures of their set). With a shard, only its
/// share is loaded and kept: the one place sharding touches the run.
fn load_sets(
    path: &Path,
    wanted: &[String],
    shard: Option<&ShardSpec>,
) -> Result<(Vec<ReplaySet>, Option<ShardRecord>)> {
    if !path.is_dir() {
        bail!(
            "{} does not exist or is not a directory; record a test set first (recplay record) or pass --path DIR",
            path.display()
        );
    }
    let dirs = list_test_sets(path)
        .with_context(|| format!("could not list the test sets in {}", path.display()))?;
    let wanted: Vec<&str> = wanted
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    for name in &wanted {
        if !dirs.iter().any(|d| d.name() == *name) {
            let known: Vec<String> = dirs.iter().map(|d| d.name()).collect();
            bail!(
                "--test-sets names {name}, which is not in {} (found: {}); check the name",
                path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    let dirs: Vec<_> = dirs
        .into_iter()
        .filter(|d| wanted.is_empty() || wanted.contains(&d.name().as_str()))
        .collect();
    if dirs.is_empty() {
        bail!(
            "no test sets in {} (a test set is any folder but reports, testReports, schema, api-tests and hidden ones); record one first (recplay record) or pass --path DIR",
            path.display()
        );
    }
    let share = shard.map(|spec| {
        let named: Vec<_> = dirs
            .iter()
            .map(|d| (d.name(), d.root().to_path_buf()))
            .collect();
        ShardRecord::plan(path, spec, &named)
    });
    let mut sets = Vec::new();
    for dir in dirs {
        let piece = match &share {
            Some(share) => match share.piece_of(&dir.name()) {
                Some(piece) => Some(piece.clone()),
                None => continue,
            },
            None => None,
        };
        // mocks.yaml is read a document at a time into the matcher's
        // index (answers are read again when served), and test files are
        // only listed: each is read when its turn comes.
        let mut index = Index::default();
        let mut set = dir
            .load_listed_with(&mut index)
            .with_context(|| format!("could not load {}", dir.root().display()))?
            .with_mocks(std::sync::Mutex::new(Some(index)));
        for p in &set.problems {
            tracing::warn!("{}: could not load {}: {}", set.name, p.location, p.message);
        }
        for note in set.unserved_notes() {
            tracing::info!("{}: {note}", set.name);
        }
        if let Some(piece) = piece {
            let range = piece.range(set.test_files.len());
            set.test_files.keep(range);
        }
        sets.push(set);
    }
    // More shards than pieces leaves some with nothing: that is a valid
    // share, and its empty report tells the merge it ran.
    if let Some(share) = &share {
        tracing::info!(
            "shard {}/{}: {} test sets, {} tests",
            share.index,
            share.total,
            sets.len(),
            sets.iter().map(|s| s.test_files.len()).sum::<usize>()
        );
    }
    Ok((sets, share))
}

/// A test's noise: its set's rules plus its own assertions. A bad regex
/// stops the run, before the test is sent.
fn test_noise(set: &str, case: &HttpTestCase, base: &NoiseRules) -> Result<NoiseRules> {
    let origin = format!("{set}/tests/{}.yaml", case.name);
    with_test_noise(base, &case.spec.assertions.noise, &origin)
}

/// Everything one test set's run needs.
struct SetRun<'a> {
    args: &'a TestConfig,
    target: &'a Target,
    replayer: &'a Replayer,
    observers: &'a [Box<dyn ReplayObserver>],
    windows: &'a TestWindows,
    bar: &'a indicatif::ProgressBar,
    /// Where each test's report entry is written as it finishes.
    run_dir: &'a Path,
}

impl SetRun<'_> {
    async fn run_set(
        &self,
        set: ReplaySet,
        noise: &NoiseRules,
        mut junit_rows: Option<&mut report::junit::Rows>,
    ) -> Result<(
        SetOutcome,
        Option<detect_noise::SetProposal>,
        report::yaml::TestsWriter,
    )> {
        let started = Utc::now();
        let mut env = Vec::new();
        for o in self.observers {
            let extra = o.before_app_start(&set).await.with_context(|| {
                format!("{} could not prepare {} for the app", o.name(), set.name)
            })?;
            env.extend(extra);
        }
        let mut app = match &self.args.command {
            Some(cmd) => Some(AppProcess::spawn(cmd, &env, Some(&self.target.authority)).await?),
            None => None,
        };
        self.wait_until_ready(&mut app).await?;
        let base_url = self.target.base_url();
        for o in self.observers {
            if let Err(e) = o.warm_up(&set.name, &base_url).await {
                tracing::warn!("{}: warm-up failed: {e:#}", o.name());
            }
        }

        let mut tests = TestTally::default();
        let mut proposal = self
            .args
            .detect_noise
            .then(detect_noise::SetProposal::default);
        let unserved = set.unserved_notes();
        let ReplaySet {
            name,
            test_files,
            mut problems,
            mut skipped_tests,
            ..
        } = set;
        let dir = self.args.path.join(&name);
        let mut entries = report::yaml::TestsWriter::create(self.run_dir, &name, &dir)?;
        let replaying = std::time::Instant::now();
        // One test case in memory at a time: each file is read when its
        // turn comes, its report entry and JUnit row are written as it
        // finishes, and only a failed test's outcome is kept.
        for file in &test_files {
            self.bar.inc(1);
            let case = match read_test(&file) {
                ReadTest::Http(case) => *case,
                ReadTest::Skipped(t) => {
                    tracing::info!(
                        "{name}: skipping {} (kind {}, not replayed)",
                        t.name,
                        t.kind
                    );
                    skipped_tests.push(t);
                    continue;
                }
                ReadTest::Problem(p) => {
                    tracing::warn!("{name}: could not load {}: {}", p.location, p.message);
                    problems.push(p);
                    continue;
                }
            };
            let rules = test_noise(&name, &case, noise)?;
            let outcome = self.run_test(&name, case, &rules, proposal.as_mut()).await;
            entries.add(&outcome)?;
            if let Some(rows) = junit_rows.as_deref_mut() {
                rows.add(&name, &outcome)?;
            }
            tests.add(outcome);
        }
        // The app's start-up left out: what observers add per test shows here.
        tracing::debug!(elapsed = ?replaying.elapsed(), set = %name, tests = tests.len(), "tests replayed");

        if let Some(mut app) = app {
            if let Err(e) = app.stop(APP_STOP_GRACE).await {
                tracing::warn!("could not stop the app cleanly: {e:#}");
            }
        }
        let mut extras = ExtraFields::new();
        for o in self.observers {
            match o.after_test_set(&name).await {
                Ok(fields) => extras.extend(fields),
                Err(e) => {
                    extras.insert(
                        format!("{}_error", o.name()),
                        serde_yaml::Value::String(format!("{e:#}")),
                    );
                }
            }
        }
        Ok((
            SetOutcome {
                name,
                tests,
                problems,
                skipped: skipped_tests,
                unserved,
                error: None,
                started,
                completed: Utc::now(),
                extras,
            },
            proposal,
            entries,
        ))
    }

    async fn wait_until_ready(&self, app: &mut Option<AppProcess>) -> Result<()> {
        let timeout = Duration::from_secs(self.args.delay);
        let readiness = match &self.args.health_url {
            Some(url) => Readiness::HealthUrl(url),
            None => Readiness::Port(&self.target.authority),
        };
        wait_ready(app, readiness, timeout).await.with_context(|| {
            if self.args.command.is_none() {
                format!(
                    "the app at {} is not reachable; start it first or pass -c CMD so recplay starts it",
                    self.target.authority
                )
            } else {
                "the app did not become ready".to_string()
            }
        })
    }

    async fn run_test(
        &self,
        set: &str,
        case: HttpTestCase,
        noise: &NoiseRules,
        proposal: Option<&mut detect_noise::SetProposal>,
    ) -> TestOutcome {
        let mut extras = ExtraFields::new();
        let started = Utc::now();
        if proposal.is_some() {
            self.repeat(set, &case.name, Repeat::BeforeFirst).await;
        }
        let first = self.exchange(set, &case, &mut extras).await;
        if let Some(proposal) = proposal {
            // The second pass meets the recording as the first did, then the
            // run goes on from where the first left it.
            self.repeat(set, &case.name, Repeat::BeforeSecond).await;
            let mut ignored = ExtraFields::new();
            let second = self.exchange(set, &case, &mut ignored).await;
            self.repeat(set, &case.name, Repeat::AfterSecond).await;
            if let (Ok(first), Ok(second)) = (&first, &second) {
                proposal.learn(&case.name, first, second);
            }
        }
        let completed = Utc::now();
        tracing::debug!(
            elapsed = ?(completed - started).to_std().unwrap_or_default(),
            test = %case.name,
            "test replayed"
        );
        let (actual, error, comparison) = match first {
            Ok(actual) => {
                let cmp = compare(&case.spec.resp, &actual, noise);
                (Some(actual), None, Some(cmp))
            }
            Err(e) => (None, Some(format!("{e:#}")), None),
        };
        TestOutcome {
            noise: case.spec.assertions.noise.clone(),
            case,
            started,
            completed,
            actual,
            error,
            comparison,
            extras,
        }
    }

    async fn repeat(&self, set: &str, test: &str, phase: Repeat) {
        for o in self.observers {
            o.repeat(set, test, phase).await;
        }
    }

    /// One request/response inside the test's window, with the observers'
    /// hooks around it.
    async fn exchange(
        &self,
        set: &str,
        case: &HttpTestCase,
        extras: &mut ExtraFields,
    ) -> Result<ActualResponse> {
        let test = case.name.as_str();
        for o in self.observers {
            if let Err(e) = o.before_test(set, test).await {
                tracing::warn!("{}: before {set}/{test}: {e:#}", o.name());
                extras.insert(
                    format!("{}_error", o.name()),
                    serde_yaml::Value::String(format!("{e:#}")),
                );
            }
        }
        self.windows.open(test, Utc::now());
        let result = self.replayer.send(&case.spec.req).await;
        self.windows.close(test, Utc::now());
        for o in self.observers {
            match o.after_test(set, test).await {
                Ok(fields) => extras.extend(fields),
                Err(e) => {
                    tracing::warn!("{}: after {set}/{test}: {e:#}", o.name());
                    extras.insert(
                        format!("{}_error", o.name()),
                        serde_yaml::Value::String(format!("{e:#}")),
                    );
                }
            }
        }
        result
    }
}
