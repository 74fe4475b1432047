//! Serves the app's outgoing HTTP calls from each test set's Http mocks
//! (recplay's and Keploy's) on the same routes, and the same forward
//! proxy, as at record; reports per test which recorded calls answered
//! (`http_mocks`) and which calls had none (`http_misses`). Without mocks
//! (`--no-mocks`) it only points the routes' variables at the real URLs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use recplay_proxy::egress::ca::{ProjectCa, CA_DIR};
use recplay_proxy::egress::route::{https_proxy_env, proxy_env};
use recplay_proxy::egress::serve::ServeAs;
use recplay_proxy::egress::{CallUsage, EgressMatcher, EgressNoise, EgressRoute, EgressServer};
use recplay_proxy::window::TestWindows;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use super::observer::{BoxFuture, ExtraFields, ReplayObserver, ReplaySet};
use crate::config::GlobalNoise;

const LOCAL: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

pub struct EgressObserver {
    routes: Vec<EgressRoute>,
    proxy: bool,
    /// The keploy directory: the forward proxy's CA lives in it.
    keploy_dir: PathBuf,
    mocking: bool,
    windows: TestWindows,
    noise: GlobalNoise,
    running: Mutex<Option<Running>>,
}

struct Running {
    matcher: Arc<std::sync::Mutex<EgressMatcher>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl EgressObserver {
    pub fn new(
        routes: Vec<EgressRoute>,
        proxy: bool,
        keploy_dir: PathBuf,
        mocking: bool,
        windows: TestWindows,
        noise: GlobalNoise,
    ) -> Self {
        EgressObserver {
            routes,
            proxy,
            keploy_dir,
            mocking,
            windows,
            noise,
            running: Mutex::new(None),
        }
    }

    /// keploy.yml's noise for `set`'s outgoing calls: body keys, path
    /// patterns and query parameters, the global ones and the set's own.
    /// A key with regexes is left out whatever its value (the matcher has
    /// no expected side to hold them against).
    fn egress_noise(&self, set: &str) -> EgressNoise {
        let own = self.noise.test_sets.get(set);
        let sections = std::iter::once(&self.noise.global).chain(own);
        let mut noise = EgressNoise::default();
        for fields in sections {
            noise.body.extend(fields.body.keys().cloned());
            noise.paths.extend(fields.path.keys().cloned());
            noise.query.extend(fields.query.keys().cloned());
        }
        noise
    }

    async fn start(&self, set: &ReplaySet) -> Result<Vec<(String, String)>> {
        let matcher = EgressMatcher::new(set.http_mocks.clone(), self.egress_noise(&set.name));
        tracing::info!(
            "{}: serving {} recorded outgoing HTTP calls",
            set.name,
            matcher.len()
        );
        let matcher = Arc::new(std::sync::Mutex::new(matcher));
        let (stop, stopped) = watch::channel(false);
        let mut env = Vec::new();
        let mut servers = Vec::new();
        for route in &self.routes {
            let server = EgressServer::bind(
                LOCAL,
                ServeAs::Route(route.clone()),
                matcher.clone(),
                self.windows.clone(),
            )
            .await
            .with_context(|| format!("serving the --egress route {}", route.name))?;
            env.push((route.env_var(), format!("http://{}", server.local_addr()?)));
            servers.push(server);
        }
        if self.proxy {
            // The recording's CA (made now if the set was recorded without
            // one): the app trusts the same bundle as when it was recorded.
            let ca = Arc::new(ProjectCa::load_or_create(&self.keploy_dir.join(CA_DIR))?);
            let server = EgressServer::bind(
                LOCAL,
                ServeAs::Proxy(Some(ca.clone())),
                matcher.clone(),
                self.windows.clone(),
            )
            .await
            .context("serving the outgoing-HTTP forward proxy (--egress-proxy)")?;
            let port = server.local_addr()?.port();
            env.extend(proxy_env(port));
            env.extend(https_proxy_env(port, &ca));
            servers.push(server);
        }
        let tasks = servers
            .into_iter()
            .map(|server| {
                let mut stopped = stopped.clone();
                tokio::spawn(server.run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                }))
            })
            .collect();
        *self.running.lock().await = Some(Running {
            matcher,
            stop,
            tasks,
        });
        Ok(env)
    }

    async fn usage(&self, test: Option<&str>) -> Option<CallUsage> {
        let running = self.running.lock().await;
        let matcher = running
            .as_ref()?
            .matcher
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Some(match test {
            Some(test) => matcher.usage_for(test),
            None => matcher.usage_outside_tests(),
        })
    }
}

/// `http_mocks` and `http_misses`, each only when there are any.
fn usage_fields(usage: CallUsage) -> Result<ExtraFields> {
    let mut fields = ExtraFields::new();
    if !usage.served.is_empty() {
        fields.insert("http_mocks".into(), serde_yaml::to_value(&usage.served)?);
    }
    if !usage.misses.is_empty() {
        fields.insert("http_misses".into(), serde_yaml::to_value(&usage.misses)?);
    }
    Ok(fields)
}

impl ReplayObserver for EgressObserver {
    fn name(&self) -> &str {
        "http_mock"
    }

    fn before_app_start<'a>(
        &'a self,
        set: &'a ReplaySet,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>>> {
        Box::pin(async move {
            if !self.mocking {
                // The app reaches the real services.
                return Ok(self
                    .routes
                    .iter()
                    .map(|r| (r.env_var(), r.url.clone()))
                    .collect());
            }
            self.start(set).await
        })
    }

    fn after_test<'a>(
        &'a self,
        _set: &'a str,
        test: &'a str,
    ) -> BoxFuture<'a, Result<ExtraFields>> {
        Box::pin(async move {
            match self.usage(Some(test)).await {
                Some(usage) => usage_fields(usage),
                None => Ok(ExtraFields::new()),
            }
        })
    }

    fn after_test_set<'a>(&'a self, _set: &'a str) -> BoxFuture<'a, Result<ExtraFields>> {
        Box::pin(async move {
            let outside = self.usage(None).await;
            if let Some(running) = self.running.lock().await.take() {
                let _ = running.stop.send(true);
                for task in running.tasks {
                    let _ = task.await;
                }
            }
            let mut fields = ExtraFields::new();
            if let Some(usage) = outside.filter(|u| !u.served.is_empty() || !u.misses.is_empty()) {
                fields.insert(
                    "http_outside_tests".into(),
                    serde_yaml::to_value(usage_fields(usage)?)?,
                );
            }
            Ok(fields)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sets_url_noise_comes_after_the_global_and_other_sets_get_none_of_it() {
        let text = "test:\n  globalNoise:\n    global:\n      path: {\"/v1/orders/*\": []}\n      query: {ts: []}\n      body: {id: []}\n    test-sets:\n      test-set-1:\n        path: {\"/v1/carts/*\": []}\n        query: {nonce: []}\n";
        let (config, _) = crate::config::KeployConfig::parse(text).expect("parses");
        let observer = EgressObserver::new(
            Vec::new(),
            false,
            PathBuf::new(),
            true,
            TestWindows::new(),
            config.test.global_noise,
        );
        let own = observer.egress_noise("test-set-1");
        assert_eq!(own.paths, ["/v1/orders/*", "/v1/carts/*"]);
        assert_eq!(own.query, ["ts", "nonce"]);
        assert_eq!(own.body, ["id"]);
        let other = observer.egress_noise("test-set-2");
        assert_eq!(other.paths, ["/v1/orders/*"]);
        assert_eq!(other.query, ["ts"]);
    }
}
