//! `tessera serve`: the signed-upload endpoint over a lake.

use crate::cli::{LakeArg, ServeArgs};
use anyhow::{Context, Result};
use tessera::lake::Lake;
use tessera::registry::Registry;

pub fn run(a: &ServeArgs) -> Result<()> {
    let lake = match a.init {
        true => Lake::open(&a.lake)?,
        false => super::open_lake(&LakeArg { lake: a.lake.clone() }).context("pass --init to create a new lake")?,
    };
    let bytes = std::fs::read(&a.registry).with_context(|| a.registry.display().to_string())?;
    let registry = Registry::parse(&bytes, &a.registry.display().to_string())?;
    let limits = tessera_net::server::Limits {
        max_body: a.max_body,
        max_video_body: a.max_video_body,
        max_skew_ms: a.max_skew_secs * 1000,
        max_in_flight: a.max_in_flight_mib << 20,
        header_timeout: std::time::Duration::from_secs(a.timeout_secs),
        body_idle_timeout: std::time::Duration::from_secs(a.timeout_secs),
        ..Default::default()
    };
    let state = tessera_net::server::AppState::new(lake, registry, limits).context("start the server")?;
    let rt = tokio::runtime::Runtime::new()?;
    let listen = a.listen.clone();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("listen on {listen}"))?;
        println!("tessera serve: listening on http://{}", listener.local_addr()?);
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        tessera_net::server::serve(listener, state, shutdown).await?;
        anyhow::Ok(())
    })
}
