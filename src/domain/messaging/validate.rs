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
}

/// Where a send goes.
pub(super) enum Target {
    New { recipient: String, subject: String },
    Reply { thread_id: String },
}

/// Checks a send: trims the body and subject, and says which kind of send it is.
pub(super) fn validate_send(req: SendMessage, max_body: usize) -> DomainResult<ValidSend> {
    let body = req.body.trim().to_owned();
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
    if let Some(id) = &req.client_id
        && (id.is_empty() || id.chars().count() > MAX_CLIENT_ID)
    {
        return Err(DomainError::invalid(
            "client_id",
            "invalid_payload",
            "client_id must be 1 to 64 characters",
        ));
    }
    let target = match (req.thread_id, req.recipient, req.subject) {
        (Some(thread_id), None, None) => Target::Reply { thread_id },
        (None, Some(recipient), Some(subject)) => {
            let subject = subject.trim().to_owned();
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
            Target::New { recipient, subject }
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
    Ok(ValidSend {
        body,
        target,
        client_id: req.client_id,
    })
}
