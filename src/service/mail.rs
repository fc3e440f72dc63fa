//! Mail to users' addresses: an e-mail verification link, a password-reset link, a note that
//! the password changed. Mails wait in a bounded queue (a full queue drops them: the request
//! that asked never waits for SMTP) and are retried when the server is away. The SMTP client
//! lives with the transports (`crate::mail`) and is handed over when the server is assembled.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{Semaphore, mpsc};

use super::{App, ServiceError, ServiceResult};
use crate::domain::account_security::{self, Purpose};
use crate::metrics::{MailCounts, Metrics};

/// Mails (and reset requests) waiting at most.
const QUEUE: usize = 1000;
/// Mails sent at once.
const CONCURRENT: usize = 4;
/// The waits between tries of a mail the server refused for now or could not be reached.
const RETRIES: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(4),
    Duration::from_secs(15),
    Duration::from_secs(60),
];

/// One plain-text mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// Why a mail did not go.
#[derive(Debug)]
pub enum SendError {
    /// Worth trying again (the server is away, or said 4xx).
    Temporary(String),
    /// It will never go (a 5xx answer, an address the server refuses).
    Permanent(String),
}

/// What sends a mail (the SMTP client).
pub trait MailSender: Send + Sync + 'static {
    fn send<'a>(&'a self, mail: &'a Mail) -> BoxFuture<'a, Result<(), SendError>>;
}

enum Job {
    Send(Mail),
    /// A password reset asked for `login`: who it goes to, if anyone, is found here, after the
    /// request was answered, so that neither the answer nor its time tell whether it exists.
    Reset {
        login: String,
    },
}

/// The mail queue.
pub struct Mails {
    jobs: mpsc::Sender<Job>,
    inbox: Mutex<Option<mpsc::Receiver<Job>>>,
    configured: bool,
}

impl Mails {
    pub fn new(configured: bool) -> Mails {
        let (jobs, inbox) = mpsc::channel(QUEUE);
        Mails {
            jobs,
            inbox: Mutex::new(Some(inbox)),
            configured,
        }
    }

    /// Whether mail is configured (`MISSIVE_SMTP_URL`).
    pub fn configured(&self) -> bool {
        self.configured
    }

    /// Queues `mail` (its address's limit already spent).
    pub(super) fn queue_mail(&self, mail: Mail, metrics: &Metrics) {
        self.queue(Job::Send(mail), metrics);
    }

    fn queue(&self, job: Job, metrics: &Metrics) {
        if self.jobs.try_send(job).is_err() {
            Metrics::inc(&metrics.mails.dropped);
            tracing::warn!("mail queue full or stopped; a mail was dropped");
        }
    }
}

impl App {
    /// Starts sending the queued mails through `sender`.
    pub fn start_mail(&self, sender: Arc<dyn MailSender>) {
        let Some(mut inbox) = self
            .mails
            .inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        let app = self.clone();
        tokio::spawn(async move {
            let permits = Arc::new(Semaphore::new(CONCURRENT));
            while let Some(job) = inbox.recv().await {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (app, sender) = (app.clone(), sender.clone());
                tokio::spawn(async move {
                    let mail = match job {
                        Job::Send(mail) => Some(mail),
                        Job::Reset { login } => app.reset_mail(&login).await,
                    };
                    if let Some(mail) = mail {
                        deliver(sender.as_ref(), &mail, &app.metrics.mails).await;
                    }
                    drop(permit);
                });
            }
        });
    }

    /// Refuses what needs mail when there is none.
    pub(super) fn mail_configured(&self) -> ServiceResult<()> {
        if self.mails.configured() {
            Ok(())
        } else {
            Err(ServiceError::MailUnavailable)
        }
    }

    /// Queues `mail` unless its address got too many lately.
    pub(super) fn mail(&self, mail: Mail) {
        if self.limits.check_mail(&mail.to).is_ok() {
            self.mails.queue(Job::Send(mail), &self.metrics);
        } else {
            Metrics::inc(&self.metrics.mails.dropped);
            tracing::info!("a mail was not sent: its address got many lately");
        }
    }

    /// Queues a password reset for `login` (a username or an address).
    pub(super) fn queue_reset(&self, login: &str) {
        let login: String = login.trim().chars().take(300).collect();
        self.mails.queue(Job::Reset { login }, &self.metrics);
    }

    /// The reset mail for `login`, if it names an account with a verified address that did not
    /// get many lately.
    async fn reset_mail(&self, login: &str) -> Option<Mail> {
        let found = account_security::reset_candidate(&self.db.conn, login).await;
        let account = match found {
            Ok(Some(account)) => account,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "password reset lookup failed");
                return None;
            }
        };
        let to = account.email.clone()?;
        if self.limits.check_mail(&to).is_err() {
            Metrics::inc(&self.metrics.mails.dropped);
            tracing::info!("a reset was not mailed: its address got many lately");
            return None;
        }
        let id = account.id;
        let token = self
            .db
            .write(async |txn| account_security::issue_token(txn, id, Purpose::Reset, None).await)
            .await;
        let token = match token {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(error = %e, "could not make a reset link");
                return None;
            }
        };
        let link = format!(
            "{}/#/reset-password?token={token}",
            self.config.public_url()
        );
        Some(Mail {
            to,
            subject: "Reset your Missive password".into(),
            text: format!(
                "Someone asked to reset the password of the Missive account {name}.\n\n\
                 To choose a new password, open this link within 30 minutes:\n\n{link}\n\n\
                 It works once. If you did not ask for this, ignore this mail: your password \
                 stays as it is.\n",
                name = account.username,
            ),
        })
    }
}

/// Sends `mail`, trying again after each temporary failure.
async fn deliver(sender: &dyn MailSender, mail: &Mail, counts: &MailCounts) {
    let mut waits = RETRIES.iter();
    loop {
        match sender.send(mail).await {
            Ok(()) => {
                Metrics::inc(&counts.sent);
                tracing::info!(subject = %mail.subject, "mail sent");
                return;
            }
            Err(SendError::Permanent(e)) => {
                Metrics::inc(&counts.failed);
                tracing::warn!(error = %e, "mail refused");
                return;
            }
            Err(SendError::Temporary(e)) => match waits.next() {
                Some(wait) => {
                    Metrics::inc(&counts.retried);
                    tracing::info!(error = %e, ?wait, "mail not sent yet; trying again");
                    tokio::time::sleep(*wait).await;
                }
                None => {
                    Metrics::inc(&counts.failed);
                    tracing::warn!(error = %e, "mail not sent; giving up");
                    return;
                }
            },
        }
    }
}
