//! The outgoing-HTTP half of `recplay record`: a recording reverse proxy
//! per `--egress NAME=URL` route, and with `--egress-proxy` a forward
//! proxy, all writing `kind: Http` mocks into the set's mocks.yaml. Returns
//! the environment that points the app at them.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::{Context, Result};
use recplay_proxy::egress::ca::{ProjectCa, CA_DIR};
use recplay_proxy::egress::forward::{ConnectTls, ForwardRecorder};
use recplay_proxy::egress::route::{https_proxy_env, proxy_env};
use recplay_proxy::egress::EgressRecorder;
use recplay_proxy::http::{HttpProxy, HttpProxyConfig, Upstream};
use recplay_proxy::tls;

use super::recording::{RecorderSummary, RecorderTask, Recording};
use crate::config::resolve::RecordConfig;

const LOCAL: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Binds every route (and the forward proxy) now, so a bad URL fails
/// before the app starts; each records until the shutdown signal.
pub async fn spawn_egress(
    args: &RecordConfig,
    recording: &Recording,
) -> Result<(Vec<RecorderTask>, Vec<(String, String)>)> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let mut env = Vec::new();
    for route in &args.egress {
        let upstream = Upstream::parse(&route.url)?;
        let mut config = HttpProxyConfig::new(upstream.clone());
        config.body_cap = args.body_cap;
        if upstream.is_https() {
            config.upstream_tls = Some(tls::client_config(
                args.upstream_ca.as_deref(),
                tls::HTTP_1_1,
            )?);
        }
        let recorder = Arc::new(EgressRecorder::new(
            recording.dir.clone(),
            recording.windows.clone(),
            route.name.clone(),
            next.clone(),
            args.body_cap,
            recording.redactor.clone(),
        ));
        let proxy = HttpProxy::bind(LOCAL, config, recorder.clone())
            .await
            .with_context(|| format!("starting the --egress route {}", route.name))?;
        let addr = proxy.local_addr()?;
        println!(
            "outgoing HTTP: route {} on http://{addr} -> {} ({})",
            route.name,
            route.url,
            route.env_var()
        );
        env.push((route.env_var(), format!("http://{addr}")));
        let shutdown = recording.shutdown.clone();
        let grace = recording.grace;
        tasks.push(tokio::spawn(async move {
            let drained = proxy.run(shutdown.wait(), grace).await;
            let counts = recorder.counts();
            Ok(RecorderSummary {
                kind: "outgoing HTTP",
                recorded: counts.recorded,
                not_recorded: counts.failed + drained.cut_at_deadline as u64,
                noun: ("mock", "mocks"),
            })
        }));
    }
    if args.egress_proxy {
        let forward = ForwardRecorder::bind(
            LOCAL,
            recording.dir.clone(),
            recording.windows.clone(),
            next,
            args.body_cap,
            recording.redactor.clone(),
            recording.grace,
        )
        .await
        .context("starting the outgoing-HTTP forward proxy (--egress-proxy)")?;
        let ca = Arc::new(ProjectCa::load_or_create(&args.path.join(CA_DIR))?);
        let upstream = tls::client_config(args.upstream_ca.as_deref(), tls::HTTP_1_1)?;
        let forward = forward.with_connect_tls(ConnectTls {
            ca: ca.clone(),
            upstream,
        });
        let addr = forward.local_addr()?;
        println!(
            "outgoing HTTP: forward proxy on http://{addr} (HTTP_PROXY, HTTPS_PROXY; CA {})",
            ca.cert_path().display()
        );
        env.extend(proxy_env(addr.port()));
        env.extend(https_proxy_env(addr.port(), &ca));
        let shutdown = recording.shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let counts = forward.run(shutdown.wait()).await;
            Ok(RecorderSummary {
                kind: "outgoing HTTP (proxy)",
                recorded: counts.recorded,
                not_recorded: counts.failed,
                noun: ("mock", "mocks"),
            })
        }));
    }
    Ok((tasks, env))
}
