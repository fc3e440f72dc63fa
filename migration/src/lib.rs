//! Schema migrations, run at start-up (or alone with `missive migrate`).

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_accounts;
mod m20261123_000002_create_messaging;
mod m20261126_000003_client_id_first;
mod m20261130_000004_legacy_password_hash;
mod m20261130_000005_imported_unread;
mod m20261130_000006_event_log;
mod m20261201_000007_event_log_by_time;
mod m20261206_000008_credential_epoch;
mod m20261206_000009_event_log_marks;
mod m20261206_000010_conversations;
mod m20261206_000011_edits;
mod m20261206_000012_after_sending;
mod m20261206_000013_notifications;
mod m20261206_000014_account_security;
mod m20261207_000015_import_rows;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_accounts::Migration),
            Box::new(m20261123_000002_create_messaging::Migration),
            Box::new(m20261126_000003_client_id_first::Migration),
            Box::new(m20261130_000004_legacy_password_hash::Migration),
            Box::new(m20261130_000005_imported_unread::Migration),
            Box::new(m20261130_000006_event_log::Migration),
            Box::new(m20261201_000007_event_log_by_time::Migration),
            Box::new(m20261206_000008_credential_epoch::Migration),
            Box::new(m20261206_000009_event_log_marks::Migration),
            Box::new(m20261206_000010_conversations::Migration),
            Box::new(m20261206_000011_edits::Migration),
            Box::new(m20261206_000012_after_sending::Migration),
            Box::new(m20261206_000013_notifications::Migration),
            Box::new(m20261206_000014_account_security::Migration),
            Box::new(m20261207_000015_import_rows::Migration),
        ]
    }
}
