//! Marks in the event log, so that a replay starts near the position asked for: a partial index
//! on `(user_id, seq)` of every 64th entry of each user. A walk finds the first mark at or past
//! the end of the page it reads and follows the chain back from there, at most 63 entries
//! more than the page, instead of from the user's newest entry, however deep the page lies.
//!
//! Only one entry in 64 goes into the index, so a commit still appends the rest at the end of
//! the log alone (an index of every entry by user cost about a quarter of fanout, migration 7).
//! The predicate must read as the queries write it (`seq % 64 = 0`) for either database to use
//! the index: `domain/event_log.rs` keeps the same number.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The same SQL on SQLite and PostgreSQL, written out as the queries write the predicate.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX event_log_marks ON event_log (user_id, seq) WHERE seq % 64 = 0",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX event_log_marks")
            .await
            .map(|_| ())
    }
}
