//! The SMTP client: the service's [`MailSender`], on lettre. `smtp://host:port` speaks plain
//! SMTP (`?tls=required` or `?tls=opportunistic` for STARTTLS), `smtps://` implicit TLS;
//! credentials in the URL (`smtps://user:pass@host`) log in.

use std::time::Duration;

use futures_util::future::BoxFuture;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::service::mail::{Mail, MailSender, SendError};

/// Sends mail through one SMTP server.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Smtp {
    pub fn new(url: &str, from: &str) -> anyhow::Result<Smtp> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("MISSIVE_SMTP_URL: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| anyhow::anyhow!("MISSIVE_MAIL_FROM {from:?}: {e}"))?;
        Ok(Smtp { transport, from })
    }
}

impl MailSender for Smtp {
    fn send<'a>(&'a self, mail: &'a Mail) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let to = mail
                .to
                .parse::<Mailbox>()
                .map_err(|e| SendError::Permanent(format!("recipient: {e}")))?;
            let message = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(&mail.subject)
                // Mail servers score a mail without one as spam, or refuse it.
                .message_id(None)
                .header(ContentType::TEXT_PLAIN)
                .body(mail.text.clone())
                .map_err(|e| SendError::Permanent(e.to_string()))?;
            match self.transport.send(message).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                Err(e) => Err(SendError::Temporary(e.to_string())),
            }
        })
    }
}
