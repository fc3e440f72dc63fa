//! A local SMTP server for the tests: it speaks the protocol as a mail server does (RFC 5321:
//! greeting, EHLO, MAIL, RCPT, DATA with dot-stuffing, RSET, QUIT; commands out of order
//! refused with 503, lines over 1000 octets with 500), parses each message (`mail-parser`),
//! refuses one without From, To, Subject, Date or Message-ID (554), and keeps what it
//! accepted. It can refuse the next transactions for now (451), as a busy server does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One mail the sink accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope's recipients.
    pub to: Vec<String>,
    pub from: String,
    pub subject: String,
    pub text: String,
}

impl Received {
    /// The token of the first link in the text whose address contains `route`
    /// (`#/reset-password?token=...`), and the link.
    pub fn link(&self, route: &str) -> Option<(String, String)> {
        let link = self
            .text
            .split_whitespace()
            .find(|w| w.contains(route) && w.starts_with("http"))?
            .to_owned();
        let token = link.split("token=").nth(1)?.to_owned();
        Some((link, token))
    }
}

#[derive(Default)]
struct Shared {
    mails: Mutex<Vec<Received>>,
    refuse: AtomicUsize,
    refused: AtomicUsize,
}

pub struct SmtpSink {
    pub port: u16,
    shared: Arc<Shared>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, s.clone()));
            }
        });
        SmtpSink { port, shared }
    }

    /// `MISSIVE_SMTP_URL` for this sink.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Answers the next `n` transactions `451` (try again later).
    pub fn refuse_next(&self, n: usize) {
        self.shared.refuse.store(n, Ordering::SeqCst);
    }

    /// Transactions refused so far.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    pub fn mails(&self) -> Vec<Received> {
        self.shared.mails.lock().unwrap().clone()
    }

    /// Mails to `to` so far.
    pub fn mails_to(&self, to: &str) -> Vec<Received> {
        self.mails()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .collect()
    }

    /// The `n`th mail (from 1) to `to`, waiting for it.
    pub async fn wait_for(&self, to: &str, n: usize) -> Received {
        let deadline = tokio::time::Instant::now() + super::WAIT;
        loop {
            if let Some(m) = self.mails_to(to).into_iter().nth(n - 1) {
                return m;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no mail #{n} to {to}; got {:?}",
                self.mails()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn session(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let reply = async |w: &mut tokio::net::tcp::OwnedWriteHalf, text: &str| {
        w.write_all(format!("{text}\r\n").as_bytes()).await.is_ok()
    };
    if !reply(&mut write, "220 sink.test ESMTP ready").await {
        return;
    }
    let (mut helo, mut from, mut to) = (false, None::<String>, Vec::<String>::new());
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.len() > 1000 {
            reply(&mut write, "500 5.5.2 line too long").await;
            continue;
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let upper = text.to_ascii_uppercase();
        let ok = if upper.starts_with("EHLO ") {
            helo = true;
            reply(
                &mut write,
                "250-sink.test\r\n250-8BITMIME\r\n250 SIZE 1000000",
            )
            .await
        } else if upper.starts_with("HELO ") {
            helo = true;
            reply(&mut write, "250 sink.test").await
        } else if upper.starts_with("MAIL FROM:") {
            if !helo || from.is_some() {
                reply(&mut write, "503 5.5.1 bad sequence").await
            } else if shared
                .refuse
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                shared.refused.fetch_add(1, Ordering::SeqCst);
                reply(&mut write, "451 4.3.0 busy, try again later").await
            } else {
                from = Some(address(&text[10..]));
                reply(&mut write, "250 2.1.0 ok").await
            }
        } else if upper.starts_with("RCPT TO:") {
            if from.is_none() {
                reply(&mut write, "503 5.5.1 MAIL first").await
            } else {
                to.push(address(&text[8..]));
                reply(&mut write, "250 2.1.5 ok").await
            }
        } else if upper == "DATA" {
            if to.is_empty() {
                reply(&mut write, "503 5.5.1 RCPT first").await
            } else {
                if !reply(&mut write, "354 end with <CRLF>.<CRLF>").await {
                    return;
                }
                let Some(data) = read_data(&mut lines).await else {
                    return;
                };
                let answer = match parse(&data, from.take().unwrap_or_default(), &to) {
                    Some(mail) => {
                        shared.mails.lock().unwrap().push(mail);
                        "250 2.0.0 queued"
                    }
                    None => "554 5.6.0 message lacks required headers",
                };
                to.clear();
                reply(&mut write, answer).await
            }
        } else if upper == "RSET" {
            from = None;
            to.clear();
            reply(&mut write, "250 2.0.0 ok").await
        } else if upper == "NOOP" {
            reply(&mut write, "250 2.0.0 ok").await
        } else if upper == "QUIT" {
            reply(&mut write, "221 2.0.0 bye").await;
            return;
        } else {
            reply(&mut write, "502 5.5.2 command not recognised").await
        };
        if !ok {
            return;
        }
    }
}

/// `<a@b>` (with any parameters after) as `a@b`.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    let inner = arg
        .strip_prefix('<')
        .and_then(|a| a.split_once('>'))
        .map(|(a, _)| a)
        .unwrap_or(arg);
    inner.to_owned()
}

/// The message up to the lone dot, dot-stuffing undone.
async fn read_data(lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await.ok()? == 0 {
            return None;
        }
        if line == b".\r\n" || line == b".\n" {
            return Some(data);
        }
        let unstuffed = if line.starts_with(b"..") {
            &line[1..]
        } else {
            &line[..]
        };
        data.extend_from_slice(unstuffed);
    }
}

fn parse(data: &[u8], from: String, to: &[String]) -> Option<Received> {
    let message = mail_parser::MessageParser::default().parse(data)?;
    message.date()?;
    message.message_id()?;
    message.from()?.first()?;
    message.to()?.first()?;
    Some(Received {
        to: to.to_vec(),
        from,
        subject: message.subject()?.to_owned(),
        text: message.body_text(0)?.into_owned(),
    })
}
