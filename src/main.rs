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
    /// Take over the database of another messaging app (everything in one transaction).
    Import {
        #[command(subcommand)]
        from: ImportFrom,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Subcommand)]
enum ImportFrom {
    /// An original Flask-Messaging database: users (with their passwords and websocket_ids)
    /// and messages (with their urls, thread_ids, read and deletion state). Running it again
    /// on the same database changes nothing.
    FlaskMessaging {
        /// The original SQLite file (`database.db`), or a `sqlite://` or `postgres://` URL.
        path: String,
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
    /// Set an account's password (read like `add`'s) and end its sessions and the connections
    /// that authenticated with Basic (each node closes them within seconds).
    Password { username: String },
    /// Make an existing account an administrator.
    Promote { username: String },
    /// Remove administrator rights.
    Demote { username: String },
    /// List the accounts: name, admin, disabled, two-factor, created.
    List,
    /// Disable an account: its sessions and connections end (Basic ones included; each node
    /// closes them within seconds) and it cannot log in until enabled.
    Disable { username: String },
    /// Enable a disabled account.
    Enable { username: String },
    /// End every session of an account (each node closes its sockets within seconds).
    Logout { username: String },
    /// Turn an account's two-factor off (a user who lost both the app and the recovery codes;
    /// check who asks first).
    TwoFactorOff { username: String },
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
        Command::Import {
            from: ImportFrom::FlaskMessaging { path },
        } => import_flask_messaging(&cli.config, &path).await,
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
    use missive::domain::{account_security, security_log, sessions};
    let db = missive::db::Database::connect(&config).await?;
    db.migrate().await?;
    let named = async |username: &str| -> anyhow::Result<missive::domain::views::Account> {
        accounts::find_account(&db.conn, username)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no account is named {username}"))
    };
    let result = match action {
        UserAction::List => {
            let mut after: Option<String> = None;
            println!(
                "{:<32} {:<6} {:<9} {:<11} created",
                "username", "admin", "disabled", "two-factor"
            );
            loop {
                let (users, next) = accounts::list(&db.conn, after.as_deref(), 500).await?;
                for u in users {
                    let yes = |b: bool| if b { "yes" } else { "-" };
                    println!(
                        "{:<32} {:<6} {:<9} {:<11} {}",
                        u.username,
                        yes(u.is_admin),
                        yes(u.disabled),
                        yes(u.totp_secret.is_some()),
                        missive::ids::rfc3339(u.created_at),
                    );
                }
                match next {
                    Some(n) => after = Some(n),
                    None => return Ok(()),
                }
            }
        }
        UserAction::Disable { username } => {
            let user = named(&username).await?;
            let id = user.user.id;
            let ended = db
                .write(async |txn| {
                    let ended = account_security::set_disabled(txn, id, true).await?;
                    security_log::record(
                        txn,
                        id,
                        security_log::Kind::SessionEnded,
                        &security_log::Place::operator(),
                    )
                    .await?;
                    Ok::<_, DomainError>(ended)
                })
                .await?;
            println!(
                "{}: disabled, {} sessions ended",
                user.user.username,
                ended.len()
            );
            return Ok(());
        }
        UserAction::Enable { username } => {
            let user = named(&username).await?;
            let id = user.user.id;
            db.write(async |txn| account_security::set_disabled(txn, id, false).await)
                .await?;
            println!("{}: enabled", user.user.username);
            return Ok(());
        }
        UserAction::TwoFactorOff { username } => {
            let user = named(&username).await?;
            let id = user.user.id;
            db.write(async |txn| {
                account_security::remove_two_factor(txn, id).await?;
                security_log::record(
                    txn,
                    id,
                    security_log::Kind::TwoFactorOff,
                    &security_log::Place::operator(),
                )
                .await
            })
            .await?;
            println!("{}: two-factor off", user.user.username);
            return Ok(());
        }
        UserAction::Logout { username } => {
            let user = named(&username).await?;
            let id = user.user.id;
            let ended = db
                .write(async |txn| sessions::revoke_all(txn, id).await)
                .await?;
            println!("{}: {} sessions ended", user.user.username, ended.len());
            return Ok(());
        }
        UserAction::Add { username, admin } => {
            let password = new_password()?;
            accounts::register(&db, &username, &password)
                .await
                .map(|u| u.user.username)
                .map(|name| (name, admin))
        }
        UserAction::Password { username } => {
            let password = new_password()?;
            return match accounts::set_password(&db, &username, &password).await {
                Ok(name) => {
                    println!("{name}: password set, sessions ended");
                    Ok(())
                }
                Err(DomainError::NotFound) => anyhow::bail!("no account is named {username}"),
                Err(e) => anyhow::bail!("{e}"),
            };
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

/// `missive import flask-messaging PATH`: a progress bar on a terminal (phase lines otherwise),
/// then a summary with every repair.
async fn import_flask_messaging(config: &Config, path: &str) -> anyhow::Result<()> {
    use missive::domain::import::{ImportError, Progress, Source, import_flask_messaging};

    struct Bar(indicatif::ProgressBar);
    impl Progress for Bar {
        fn phase(&self, name: &str, total: u64) {
            if self.0.is_hidden() {
                eprintln!("{name}...");
            }
            self.0.set_message(name.to_owned());
            self.0.set_length(total);
            self.0.set_position(0);
        }
        fn advance(&self, steps: u64) {
            self.0.inc(steps);
        }
    }

    let source = match Source::open(path).await {
        Ok(source) => source,
        Err(e) => anyhow::bail!("{e}\nnothing was imported"),
    };
    let db = missive::db::Database::connect(config).await?;
    db.migrate().await?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:18} [{bar:40}] {human_pos}/{human_len} ({elapsed})",
        )?
        .progress_chars("=> "),
    );
    let result = import_flask_messaging(&db, source, path, &Bar(bar.clone())).await;
    bar.finish_and_clear();
    let summary = match result {
        Ok(summary) => summary,
        Err(e @ (ImportError::Source(_) | ImportError::NotFlaskMessaging(_))) => {
            anyhow::bail!("{e}\nnothing was imported")
        }
        Err(e) => anyhow::bail!("{e}"),
    };
    if summary.already_imported {
        println!("{path} was imported already: nothing changed");
        return Ok(());
    }
    println!(
        "imported {} users, {} threads, {} messages in {:.1?}",
        summary.users, summary.threads, summary.messages, summary.elapsed
    );
    println!(
        "  {} placeholder accounts, {} messages hidden for one side, {} unread below a read mark",
        summary.placeholders, summary.hidden, summary.unread_below_mark
    );
    if summary.repairs.total() == 0 {
        println!("no repairs were needed");
    } else {
        println!("repairs ({}):", summary.repairs.total());
        for (kind, rows) in &summary.repairs.0 {
            println!("  {kind}: {}", rows.len());
            for row in rows {
                println!("    {row}");
            }
        }
    }
    Ok(())
}

/// A new password, from MISSIVE_NEW_PASSWORD or a line of standard input.
fn new_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("MISSIVE_NEW_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
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
