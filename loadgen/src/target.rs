//! What the load is aimed at: Missive (accounts, threads, tokens) or the bare baseline server.

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use missive_client::{ConnectOptions, Socket};
use serde_json::{Value, json};

/// A user as the load generator drives them.
#[derive(Clone)]
pub struct LoadUser {
    pub index: usize,
    /// CONNECT payload for their sockets.
    pub auth: Value,
}

#[derive(Clone)]
pub enum Target {
    Missive {
        url: String,
        http: reqwest::Client,
        run: String,
        /// Sockets also hear the legacy Flask-Messaging events, as the original client's do.
        legacy: bool,
    },
    Baseline {
        url: String,
    },
}

impl Target {
    pub fn missive(url: &str, legacy: bool) -> Target {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("http client");
        let run = format!("{:04x}", rand::random::<u16>());
        Target::Missive {
            url: url.trim_end_matches('/').to_owned(),
            http,
            run,
            legacy,
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Target::Missive { url, .. } | Target::Baseline { url } => url,
        }
    }

    /// Creates (and logs in) `n` users, `concurrency` at a time.
    pub async fn users(
        &self,
        n: usize,
        concurrency: usize,
        progress: &indicatif::ProgressBar,
    ) -> anyhow::Result<Vec<LoadUser>> {
        let made = futures_util::stream::iter(0..n)
            .map(|i| async move {
                let user = self.user(i).await;
                progress.inc(1);
                user
            })
            .buffer_unordered(concurrency)
            .collect::<Vec<_>>()
            .await;
        let mut users = made.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        users.sort_by_key(|u| u.index);
        Ok(users)
    }

    async fn user(&self, index: usize) -> anyhow::Result<LoadUser> {
        match self {
            Target::Baseline { .. } => Ok(LoadUser {
                index,
                auth: json!({ "user": index }),
            }),
            Target::Missive {
                url,
                http,
                run,
                legacy,
            } => {
                let creds = json!({ "username": format!("lg{run}_{index}"), "password": "loadgen-password" });
                let res = http
                    .post(format!("{url}/api/v1/auth/register"))
                    .json(&creds)
                    .send()
                    .await?;
                if !res.status().is_success() && res.status() != reqwest::StatusCode::CONFLICT {
                    bail!(
                        "register failed: {} {}",
                        res.status(),
                        res.text().await.unwrap_or_default()
                    );
                }
                let res = http
                    .post(format!("{url}/api/v1/auth/login"))
                    .json(&creds)
                    .send()
                    .await?;
                if !res.status().is_success() {
                    bail!(
                        "login failed: {} {} (start the server with MISSIVE_LOGIN_RATE raised for benchmarks)",
                        res.status(),
                        res.text().await.unwrap_or_default()
                    );
                }
                let body: Value = res.json().await?;
                let token = body["token"]
                    .as_str()
                    .context("no token in login answer")?
                    .to_owned();
                Ok(LoadUser {
                    index,
                    auth: json!({ "token": token, "legacy": legacy }),
                })
            }
        }
    }

    /// The conversation `from` writes into, addressed to `to` (one user: a direct thread;
    /// several: a group); returns what `message:send` needs.
    pub async fn conversation(&self, from: &LoadUser, to: &[&LoadUser]) -> anyhow::Result<Value> {
        match self {
            Target::Baseline { .. } => {
                let ids: Vec<String> = to.iter().map(|u| u.index.to_string()).collect();
                Ok(json!({ "thread_id": format!("{}:{}", from.index, ids.join(",")) }))
            }
            Target::Missive { url, http, run, .. } => {
                let token = from.auth["token"].as_str().unwrap_or_default();
                let names: Vec<String> =
                    to.iter().map(|u| format!("lg{run}_{}", u.index)).collect();
                // One name as `recipient`, which servers from before groups take too.
                let first = match names.as_slice() {
                    [one] => json!({ "recipient": one, "subject": "load", "body": "hello" }),
                    _ => json!({ "recipients": names, "subject": "load", "body": "hello" }),
                };
                let res = http
                    .post(format!("{url}/api/v1/messages"))
                    .bearer_auth(token)
                    .json(&first)
                    .send()
                    .await?;
                if !res.status().is_success() {
                    bail!(
                        "opening a thread failed: {}",
                        res.text().await.unwrap_or_default()
                    );
                }
                let body: Value = res.json().await?;
                Ok(json!({ "thread_id": body["message"]["thread_id"] }))
            }
        }
    }

    /// A socket for `user` on the messaging namespace. It keeps `message:new` only, undecoded
    /// (acks aside): the other events are dropped unread and the fanout reads one field of each
    /// delivery, so the load generator leaves the CPU it would spend on them to the server under
    /// test, which shares the machine.
    pub async fn connect(&self, user: &LoadUser) -> anyhow::Result<Socket> {
        self.connect_at(self.url(), user).await
    }

    /// The same, on the node at `url` (of the same cluster).
    pub async fn connect_at(&self, url: &str, user: &LoadUser) -> anyhow::Result<Socket> {
        let opts = ConnectOptions::namespace("/messages")
            .auth(user.auth.clone())
            .only_events(&["message:new"])
            .raw_payloads();
        tokio::time::timeout(Duration::from_secs(30), Socket::connect(url, opts))
            .await
            .context("handshake timed out")?
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}
