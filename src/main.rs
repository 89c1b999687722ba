//! The `sandgraph` command: `serve` (HTTP + MCP over streamable HTTP) and `mcp` (MCP on
//! stdio for desktop clients).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use sandgraph::app::{App, Mode};
use sandgraph::auth::{Role, TokenStore};
use sandgraph::config::Config;
use sandgraph::telemetry;

/// An MCP server that runs code in wasmtime sandboxes.
///
/// Every setting is listed below; `sandgraph settings --markdown` prints them as
/// docs/configuration.md.
#[derive(Parser)]
#[command(version, about, long_about = None)]
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
    /// Speak MCP on stdin/stdout (for desktop MCP clients); runs as the local user.
    Mcp,
    /// Manage bearer tokens (stored as SHA-256 hashes in <data>/sandgraph.db).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Print every setting (environment variable, default, meaning).
    Settings {
        /// As the Markdown of docs/configuration.md.
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token and print it (once: only its hash is stored).
    Create {
        /// agent (tools), developer (+ history), admin (+ audit, tokens).
        #[arg(long)]
        role: String,
        /// A name to recognise it by in the audit log.
        #[arg(long)]
        name: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id; takes effect immediately, even in a running server.
    Revoke {
        /// The token id (from `token list`).
        id: String,
    },
}

fn main() -> anyhow::Result<()> {
    let matches = Cli::command()
        .after_help(sandgraph::config::settings_help())
        .get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    if let Command::Settings { markdown } = &cli.command {
        if *markdown {
            print!("{}", sandgraph::config::settings_markdown());
        } else {
            print!("{}", sandgraph::config::settings_help());
        }
        return Ok(());
    }
    let mut config = Config::load(cli.config.as_deref())?;
    if let Command::Token { action } = &cli.command {
        return manage_tokens(&config, action);
    }
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

fn manage_tokens(config: &Config, action: &TokenAction) -> anyhow::Result<()> {
    let tokens = TokenStore::open(&config.database_path())?;
    match action {
        TokenAction::Create { role, name } => {
            let role = Role::parse(role)
                .with_context(|| format!("unknown role {role:?}; use agent, developer or admin"))?;
            let (info, token) = tokens.create(name, role)?;
            eprintln!(
                "created {} token {} ({}); it is shown only now:",
                info.role.as_str(),
                info.id,
                info.name
            );
            println!("{token}");
        }
        TokenAction::List => {
            println!(
                "{:<12}  {:<9}  {:<25}  {:<32}  name",
                "id", "role", "created", "revoked"
            );
            for t in tokens.list()? {
                println!(
                    "{:<12}  {:<9}  {:<25}  {:<32}  {}",
                    t.id,
                    t.role.as_str(),
                    &t.created_at[..t.created_at.len().min(25)],
                    t.revoked_at.as_deref().unwrap_or("-"),
                    t.name
                );
            }
        }
        TokenAction::Revoke { id } => {
            if !tokens.revoke(id)? {
                anyhow::bail!("no active token with id {id:?} (see `sandgraph token list`)");
            }
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { .. } => App::build(config, Mode::Serve).await?.serve().await,
        Command::Mcp => App::build(config, Mode::Stdio).await?.serve_stdio().await,
        Command::Token { .. } | Command::Settings { .. } => Ok(()),
    }
}
