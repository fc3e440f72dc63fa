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
    /// What to log: a level (`info`), or per module (`info,missive::http=warn`).
    #[arg(long, env = "MISSIVE_LOG", default_value = "info", global = true)]
    log: String,
    /// `text` for people, `json` for log collectors (one object a line).
    #[arg(long, env = "MISSIVE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
    /// Copy the SQLite database into a new file while the server serves and writes (for
    /// PostgreSQL, use pg_dump).
    Backup {
        /// The new file (refused if it exists).
        path: std::path::PathBuf,
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
        /// Print what the import would do (the plan, every repair, what it refuses) and write
        /// nothing.
        #[arg(long)]
        dry_run: bool,
        /// Import only what the original gained or changed since the last import of it: new
        /// users and messages, read and deletion flags set, new password hashes.
        #[arg(long)]
        update: bool,
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
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log)
        .map_err(|e| anyhow::anyhow!("MISSIVE_LOG {:?}: {e}", cli.log))?;
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match cli.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
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
        Command::Backup { path } => backup(&cli.config, &path).await,
        Command::Import {
            from:
                ImportFrom::FlaskMessaging {
                    path,
                    dry_run,
                    update,
                },
        } => {
            let options = missive::domain::import::Options { update, dry_run };
            import_flask_messaging(cli.config, &path, options).await
        }
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

/// `missive import flask-messaging PATH [--dry-run] [--update]`: a progress bar on a
/// terminal (phase lines otherwise), then a summary with every repair and refusal. Exits 2
/// when an update refused some changes (it imported the others).
async fn import_flask_messaging(
    mut config: Config,
    path: &str,
    options: missive::domain::import::Options,
) -> anyhow::Result<()> {
    use missive::domain::import::{ImportError, Outcome, Progress, Repairs, Source};

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
    fn print_repairs(repairs: &Repairs) {
        if repairs.total() == 0 {
            println!("no repairs were needed");
            return;
        }
        println!("repairs ({}):", repairs.total());
        for (kind, rows) in &repairs.0 {
            println!("  {kind}: {}", rows.len());
            for row in rows {
                println!("    {row}");
            }
        }
    }

    let nothing = if options.dry_run {
        "dry run: nothing was written"
    } else {
        "nothing was imported"
    };
    let source = match Source::open(path).await {
        Ok(source) => source,
        Err(e) => anyhow::bail!("{e}\n{nothing}"),
    };
    if options.dry_run
        && let Some(file) = sqlite_file(&config.database_url)
        && !std::path::Path::new(file).exists()
    {
        // Planned against an empty database, without making the file.
        eprintln!("no database at {file} yet: planning against an empty one");
        config.database_url = "sqlite::memory:".into();
        config.db_pool = 1;
    }
    let db = missive::db::Database::connect(&config).await?;
    if !options.dry_run {
        db.migrate().await?;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:18} [{bar:40}] {human_pos}/{human_len} ({elapsed})",
        )?
        .progress_chars("=> "),
    );
    let result = missive::domain::import::import_flask_messaging(
        &db,
        source,
        path,
        options,
        &Bar(bar.clone()),
    )
    .await;
    bar.finish_and_clear();
    let would = |done: &'static str, dry: &'static str| if options.dry_run { dry } else { done };
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e @ (ImportError::Source(_) | ImportError::NotFlaskMessaging(_))) => {
            anyhow::bail!("{e}\n{nothing}")
        }
        Err(e) if options.dry_run => anyhow::bail!("{e}\n{nothing}"),
        Err(e) => anyhow::bail!("{e}"),
    };
    let mut refused = false;
    match outcome {
        Outcome::AlreadyImported if options.update => {
            println!("nothing changed in {path} since the last import")
        }
        Outcome::AlreadyImported => println!("{path} was imported already: nothing changed"),
        Outcome::Imported(summary) => {
            println!(
                "{} {} users, {} threads, {} messages in {:.1?}",
                would("imported", "would import"),
                summary.users,
                summary.threads,
                summary.messages,
                summary.elapsed
            );
            println!(
                "  {} placeholder accounts, {} messages hidden for one side, {} unread below a \
                 read mark",
                summary.placeholders, summary.hidden, summary.unread_below_mark
            );
            print_repairs(&summary.repairs);
        }
        Outcome::Updated(update) if update.is_empty() && update.gone.is_empty() => {
            println!("nothing changed in {path} since the last import")
        }
        Outcome::Updated(update) => {
            println!(
                "{} {path}: {} new users ({} placeholder accounts), {} new messages ({} new \
                 threads), {} read, {} deleted for one side, {} new password hashes",
                would("updated from", "would update from"),
                update.users,
                update.placeholders,
                update.messages,
                update.threads,
                update.read,
                update.hidden,
                update.passwords
            );
            print_repairs(&update.repairs);
            for gone in &update.gone {
                println!("{gone}");
            }
            if !update.refused.is_empty() {
                refused = true;
                println!(
                    "refused ({}): these changes conflict with what Missive wrote since the \
                     last import, or the original app could not have made them; they stay out \
                     of Missive:",
                    update.refused.len()
                );
                for r in &update.refused {
                    println!("  {r}");
                }
            }
        }
    }
    if options.dry_run {
        println!("{nothing}");
    }
    if refused {
        std::process::exit(2);
    }
    Ok(())
}

/// The file of a `sqlite:` database URL (None for another database, or one in memory).
fn sqlite_file(url: &str) -> Option<&str> {
    let file = url.strip_prefix("sqlite:")?.trim_start_matches("//");
    let file = file.split('?').next().unwrap_or_default();
    (!file.is_empty() && !file.starts_with(':')).then_some(file)
}

/// `missive backup PATH`.
async fn backup(config: &Config, target: &std::path::Path) -> anyhow::Result<()> {
    let Some(rest) = config.database_url.strip_prefix("sqlite:") else {
        anyhow::bail!(
            "missive backup copies SQLite databases; for PostgreSQL use its own tools:\n  \
             pg_dump --format=custom --file={} '<MISSIVE_DATABASE_URL>'\n\
             and pg_restore to restore",
            target.display()
        );
    };
    let file = sqlite_file(&config.database_url).unwrap_or(rest);
    if !std::path::Path::new(file).is_file() {
        anyhow::bail!("no SQLite database at {file:?} (MISSIVE_DATABASE_URL)");
    }
    if target.exists() {
        anyhow::bail!(
            "{} exists already: back up into a new file",
            target.display()
        );
    }
    let started = std::time::Instant::now();
    let db = missive::db::Database::connect(config).await?;
    db.backup_into(target).await?;
    let size = std::fs::metadata(target)?.len();
    println!(
        "backed up {file} to {} ({:.1} MB) in {:.1?}",
        target.display(),
        size as f64 / 1e6,
        started.elapsed()
    );
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
