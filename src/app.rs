//! The application, built once: config -> stores -> sandbox -> registry (the tools) ->
//! transports. [`App::serve`] runs REST + MCP over streamable HTTP and drains on
//! SIGTERM or Ctrl-C; [`App::serve_stdio`] speaks MCP on stdio.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::auth::{Role, TokenStore};
use crate::config::Config;
use crate::sandbox::Sandbox;
use crate::shutdown::Shutdown;
use crate::tools::Tools;
use crate::{api, mcp, store, telemetry};

/// After the grace period, how long stopped runs and MCP streams get to wind down.
const AFTER_GRACE: Duration = Duration::from_secs(5);

/// Which transport the process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// REST + MCP over streamable HTTP (`sandgraph serve`).
    Serve,
    /// MCP on stdio (`sandgraph mcp`).
    Stdio,
}

/// Everything a running sandgraph is made of.
pub struct App {
    /// The tools and what they share.
    pub tools: Tools,
    /// The process's drain.
    pub shutdown: Shutdown,
    config: Arc<Config>,
}

impl App {
    /// Build the application for `mode`.
    pub async fn build(config: Config, mode: Mode) -> anyhow::Result<App> {
        let config = Arc::new(config);
        let shutdown = Shutdown::new();
        let tokens = Arc::new(TokenStore::open_with(
            &config.database_path(),
            !config.token_reload.is_zero(),
        )?);
        spawn_token_reload(&tokens, config.token_reload, &shutdown);
        if mode == Mode::Serve {
            bootstrap_admin(&tokens, &config)?;
        }
        let sandbox_config = config.sandbox_config();
        let sandbox = tokio::task::spawn_blocking(move || Sandbox::new(sandbox_config))
            .await
            .context("loading the sandbox")??;
        let (records, history, neo4j) = store::open(&config, &shutdown).await?;
        let mut tools = Tools::new(sandbox, config.clone(), tokens, records, history, neo4j)?
            .with_shutdown(shutdown.clone());
        if config.linter == crate::config::Linter::Ruff {
            // Fail at start, not at the first lint_code, when the linter is missing.
            let version = tools.ruff.version().await.map_err(|e| {
                anyhow::anyhow!("{e}; or set SANDGRAPH_LINTER=guest to lint inside the guest")
            })?;
            tracing::info!(%version, binary = %tools.ruff.binary().display(), "lint_code uses ruff");
        }
        if mode == Mode::Serve {
            tools = tools.with_metrics(telemetry::install_metrics(&shutdown)?);
        }
        tools.workspaces.spawn_janitor(&shutdown);
        Ok(App {
            tools,
            shutdown,
            config,
        })
    }

    /// Serve REST and MCP until SIGTERM/Ctrl-C, then drain: stop accepting, let
    /// in-flight calls finish for the grace period, then cancel what still runs (each
    /// recorded as `cancelled`) and end MCP streams, flush the durable writer, let the
    /// shipper move what it can to Neo4j, and return.
    pub async fn serve(self) -> anyhow::Result<()> {
        raise_open_files_limit(&self.config.http.limits());
        let bind = self.config.bind;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("binding {bind}"))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, "sandgraph listening (REST on /, MCP on /mcp)");
        // Printed on stdout too, so scripts and tests can find a port chosen with :0.
        println!("listening on http://{address}");
        let (router, strangers) = api::router(self.tools.clone());
        let server = api::serve(
            listener,
            router,
            self.config.http.limits(),
            self.shutdown.begun(),
        );
        let mut server = tokio::spawn(server);
        tokio::select! {
            result = &mut server => {
                // The server stopped on its own: an I/O error.
                return result.context("the HTTP server task")?.context("serving HTTP");
            }
            () = signal() => {}
        }
        let grace = self.config.shutdown_grace;
        tracing::info!(grace_ms = grace.as_millis() as u64, "draining");
        self.shutdown.begin();
        if tokio::time::timeout(grace, &mut server).await.is_err() {
            tracing::warn!(
                active_runs = self.tools.sandbox.status().active_runs,
                "grace period over; cancelling in-flight runs"
            );
            self.shutdown.stop_runs();
            if tokio::time::timeout(AFTER_GRACE, &mut server)
                .await
                .is_err()
            {
                tracing::warn!("connections still open after the grace period; closing them");
                server.abort();
            }
        }
        // Failures during the drain, after the flush task's last window.
        strangers.flush(&*self.tools.audit);
        self.finish().await;
        Ok(())
    }

    /// Serve MCP on stdin/stdout until the client disconnects, then flush.
    pub async fn serve_stdio(self) -> anyhow::Result<()> {
        let result = mcp::serve_stdio(self.tools.clone()).await;
        self.shutdown.begin();
        self.finish().await;
        result
    }

    /// Flush the durable writer and wait for the background tasks (the shipper's
    /// final flush included).
    async fn finish(&self) {
        if let Err(err) = self.tools.store.append(Vec::new()).await {
            tracing::error!(error = %err, "flushing the store failed");
        }
        if !self.shutdown.wait_for_tasks(Duration::from_secs(10)).await {
            tracing::warn!("background tasks still running at exit");
        }
        // Last: runs needed the ticks until now.
        if !self.tools.sandbox.stop_ticker() {
            tracing::warn!(
                active_runs = self.tools.sandbox.status().active_runs,
                "runs still in flight at exit; the epoch ticker keeps them interruptible"
            );
        }
        tracing::info!(
            outbox_depth = self.tools.store.outbox_depth(),
            "sandgraph stopped"
        );
    }
}

/// Raise the soft limit on open files to the hard one: the usual soft limit (1024) is
/// the connection cap itself, so without this the cap would never be reached and
/// `accept` would fail instead (and the stores, guests and Neo4j need files too). Warns
/// when even the hard limit leaves too little room for the cap.
fn raise_open_files_limit(limits: &api::HttpLimits) {
    let needed = (limits.max_connections + api::PROBE_CONNECTIONS) as u64 + 256;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < needed => tracing::warn!(
            open_files = limit,
            needed,
            "the open-files limit is below the connection cap plus room for the server's own files; raise it (ulimit -n) or lower SANDGRAPH_MAX_CONNECTIONS"
        ),
        Ok(limit) => tracing::debug!(open_files = limit, "open-files limit"),
        Err(err) => tracing::warn!(error = %err, "could not raise the open-files limit"),
    }
}

/// The backstop reload of the memory copy of active tokens (see [`TokenStore`]).
fn spawn_token_reload(tokens: &Arc<TokenStore>, every: Duration, shutdown: &Shutdown) {
    if every.is_zero() {
        return;
    }
    let (tokens, begun) = (tokens.clone(), shutdown.begun());
    shutdown.spawn(async move {
        tokio::pin!(begun);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = &mut begun => return,
            }
            let tokens = tokens.clone();
            match tokio::task::spawn_blocking(move || tokens.reload()).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::warn!(error = format!("{err:#}"), "reloading tokens failed")
                }
                Err(err) => tracing::warn!(error = %err, "token reload task failed"),
            }
        }
    });
}

/// Make sure someone can call the server: take `SANDGRAPH_ADMIN_TOKEN`, or on the very
/// first start mint an admin token and print it once.
fn bootstrap_admin(tokens: &TokenStore, config: &Config) -> anyhow::Result<()> {
    if let Some(token) = &config.admin_token {
        return tokens.ensure("bootstrap-admin", Role::Admin, token);
    }
    if tokens.is_empty()? {
        let (info, token) = tokens.create("first-admin", Role::Admin)?;
        eprintln!(
            "No tokens existed, so an admin token was created (id {}). It is shown only now;\n\
             store it safely and create narrower ones with `sandgraph token create`:\n\n    {token}\n",
            info.id
        );
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
