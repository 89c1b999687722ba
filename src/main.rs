//! The `sandgraph` command: `serve` (HTTP + MCP over streamable HTTP) and `mcp` (MCP on
//! stdio for desktop clients).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use sandgraph::config::Config;
use sandgraph::sandbox::Sandbox;
use sandgraph::tools::Tools;
use sandgraph::{api, mcp, telemetry};

/// An MCP server that runs code in wasmtime sandboxes.
///
/// Settings come from defaults, then the TOML file given with --config (or
/// SANDGRAPH_CONFIG), then environment variables:
///
///   SANDGRAPH_BIND                 listen address (default 127.0.0.1:8000)
///   SANDGRAPH_DATA_DIR             data directory (default ./data)
///   SANDGRAPH_GUEST_DIR            built guests (default ./build/guest)
///   SANDGRAPH_COMPILED_CACHE_DIR   compiled-guest cache (default <data>/compiled)
///   SANDGRAPH_MAX_CODE_BYTES       largest accepted source (default 262144)
///   SANDGRAPH_MAX_CONCURRENT_RUNS  sandbox runs at once (default 64)
///   SANDGRAPH_ALLOWED_HOSTS        extra Host names accepted at /mcp (comma-separated)
///   SANDGRAPH_LOG_FORMAT           text | json (default text)
///   RUST_LOG                       log filter (default info)
#[derive(Parser)]
#[command(version, about, verbatim_doc_comment)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "SANDGRAPH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API and MCP (streamable HTTP at /mcp).
    Serve {
        /// Listen address (overrides SANDGRAPH_BIND).
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
    },
    /// Speak MCP on stdin/stdout (for desktop MCP clients).
    Mcp,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    if let Command::Serve { bind: Some(bind) } = &cli.command {
        config.bind = *bind;
    }
    telemetry::init(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli.command, config))
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let sandbox_config = config.sandbox_config();
    let sandbox = tokio::task::spawn_blocking(move || Sandbox::new(sandbox_config))
        .await
        .context("loading the sandbox")??;
    let tools = Tools::new(sandbox, config.clone());
    match command {
        Command::Serve { .. } => serve(tools, &config).await,
        Command::Mcp => mcp::serve_stdio(tools).await,
    }
}

async fn serve(tools: Tools, config: &Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "sandgraph listening (REST on /, MCP on /mcp)");
    // Printed on stdout too, so scripts and tests can find a port chosen with :0.
    println!("listening on http://{address}");
    axum::serve(listener, api::router(tools))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("sandgraph stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
