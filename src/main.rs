//! The `missive` command: serve (default), migrate, manage users.

use clap::{Parser, Subcommand};
use missive::domain::{DomainError, accounts};
use missive::{Config, Server};
use tracing_subscriber::EnvFilter;

/// jemalloc, for Rust's allocations and, unprefixed, for SQLite's as well (docs/performance.md).
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "missive", version, about = "Realtime private-messaging server")]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Append benchmark history: seeded users, threads and messages (batched inserts).
    Seed {
        #[arg(long, default_value_t = 100)]
        users: usize,
        #[arg(long, default_value_t = 10_000)]
        threads: usize,
        #[arg(long, default_value_t = 10_000)]
        messages: usize,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create an account; the password is read from MISSIVE_NEW_PASSWORD or standard input.
    Add {
        username: String,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Make an existing account an administrator.
    Promote { username: String },
    /// Remove administrator rights.
    Demote { username: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            EnvFilter::try_from_env("MISSIVE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    raise_fd_limit();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Server::start(cli.config).await?.run_until_signal().await,
        Command::Migrate => {
            let db = missive::db::Database::connect(&cli.config).await?;
            db.migrate().await?;
            println!("database is up to date");
            Ok(())
        }
        Command::User { action } => manage_user(cli.config, action).await,
        Command::Seed {
            users,
            threads,
            messages,
        } => {
            let db = missive::db::Database::connect(&cli.config).await?;
            db.migrate().await?;
            let started = std::time::Instant::now();
            missive::domain::seed::seed(&db, users, threads, messages).await?;
            println!(
                "seeded {messages} messages over {threads} threads in {:.1?}",
                started.elapsed()
            );
            Ok(())
        }
    }
}

async fn manage_user(config: Config, action: UserAction) -> anyhow::Result<()> {
    let db = missive::db::Database::connect(&config).await?;
    db.migrate().await?;
    let result = match action {
        UserAction::Add { username, admin } => {
            let password = match std::env::var("MISSIVE_NEW_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            accounts::register(&db, &username, &password)
                .await
                .map(|u| u.username)
                .map(|name| (name, admin))
        }
        UserAction::Promote { username } => accounts::find_by_username(&db.conn, &username)
            .await
            .and_then(|u| u.map(|u| (u.username, true)).ok_or(DomainError::NotFound)),
        UserAction::Demote { username } => accounts::find_by_username(&db.conn, &username)
            .await
            .and_then(|u| u.map(|u| (u.username, false)).ok_or(DomainError::NotFound)),
    };
    match result {
        Ok((name, admin)) => {
            accounts::set_admin(&db.conn, &name, admin).await?;
            println!("{name}{}", if admin { " (admin)" } else { "" });
            Ok(())
        }
        Err(e) => anyhow::bail!("{e}"),
    }
}

/// Every socket is a file descriptor: lift the soft limit to the hard one.
fn raise_fd_limit() {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
