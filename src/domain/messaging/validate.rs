//! What a send may carry: a body within limits, and either a reply's thread or a new thread's
//! recipient and subject.

use super::{MAX_SUBJECT, SendMessage};
use crate::domain::{DomainError, DomainResult};

/// Longest client-chosen idempotency key.
const MAX_CLIENT_ID: usize = 64;

/// A send that passed validation.
pub(super) struct ValidSend {
    pub body: String,
    pub target: Target,
    pub client_id: Option<String>,
    /// The url of the message a reply answers.
    pub reply_to: Option<String>,
}

/// Where a send goes.
pub(super) enum Target {
    /// A new thread: to one other person (direct) or several (a group).
    New {
        recipients: Vec<String>,
        subject: String,
    },
    Reply {
        thread_id: String,
    },
}

/// Checks a send: trims the body and subject, and says which kind of send it is.
pub(super) fn validate_send(req: SendMessage, max_body: usize) -> DomainResult<ValidSend> {
    let body = valid_body(&req.body, max_body)?;
    if let Some(id) = &req.client_id
        && (id.is_empty() || id.chars().count() > MAX_CLIENT_ID)
    {
        return Err(DomainError::invalid(
            "client_id",
            "invalid_payload",
            "client_id must be 1 to 64 characters",
        ));
    }
    let recipients = match (req.recipient, req.recipients) {
        (Some(_), Some(_)) => {
            return Err(DomainError::invalid(
                "recipients",
                "invalid_payload",
                "give recipient (one person) or recipients (a list), not both",
            ));
        }
        (Some(one), None) => Some(vec![one]),
        (None, Some(list)) if list.is_empty() => {
            return Err(DomainError::invalid(
                "recipients",
                "invalid_payload",
                "recipients names nobody",
            ));
        }
        (None, list) => list,
    };
    let target = match (req.thread_id, recipients, req.subject) {
        (Some(thread_id), None, None) => Target::Reply { thread_id },
        (None, Some(recipients), Some(subject)) => {
            let subject = valid_subject(&subject)?;
            Target::New {
                recipients,
                subject,
            }
        }
        (None, Some(_), None) => {
            return Err(DomainError::invalid(
                "subject",
                "invalid_payload",
                "a new thread needs a subject",
            ));
        }
        (None, None, _) => {
            return Err(DomainError::invalid(
                "recipient",
                "invalid_payload",
                "give either thread_id (reply) or recipient and subject (new thread)",
            ));
        }
        (Some(_), _, _) => {
            return Err(DomainError::invalid(
                "thread_id",
                "invalid_payload",
                "a reply takes thread_id and body only; replies keep the thread's subject",
            ));
        }
    };
    if req.reply_to.is_some() && matches!(target, Target::New { .. }) {
        return Err(DomainError::invalid(
            "reply_to",
            "invalid_payload",
            "reply_to answers a message of the thread a reply goes to (thread_id)",
        ));
    }
    Ok(ValidSend {
        body,
        target,
        client_id: req.client_id,
        reply_to: req.reply_to,
    })
}

/// A subject trimmed, once it is 1 to [`MAX_SUBJECT`] characters (a new thread's, or a group's
/// new name).
pub(super) fn valid_subject(subject: &str) -> DomainResult<String> {
    let subject = subject.trim();
    if subject.is_empty() {
        return Err(DomainError::invalid(
            "subject",
            "empty_subject",
            "subject is empty",
        ));
    }
    if subject.chars().count() > MAX_SUBJECT {
        return Err(DomainError::invalid(
            "subject",
            "subject_too_long",
            format!("subject is longer than {MAX_SUBJECT} characters"),
        ));
    }
    Ok(subject.to_owned())
}

/// A message body trimmed, once it is 1 to `max_body` characters (a send's, or an edit's).
pub(super) fn valid_body(body: &str, max_body: usize) -> DomainResult<String> {
    let body = body.trim();
    if body.is_empty() {
        return Err(DomainError::invalid(
            "body",
            "empty_body",
            "message body is empty",
        ));
    }
    if body.chars().count() > max_body {
        return Err(DomainError::invalid(
            "body",
            "message_too_long",
            format!("message body is longer than {max_body} characters"),
        ));
    }
    Ok(body.to_owned())
}
