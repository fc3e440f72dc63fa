use sea_orm::entity::prelude::*;

/// A change of a group's membership or subject, placed in its history after the message that
/// was the thread's newest when it happened.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "thread_changes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub thread_id: i64,
    /// The thread's newest message when it happened (0 before any).
    pub after_message_id: i64,
    /// `added`, `removed`, `left` or `renamed`.
    pub kind: String,
    /// Who made it.
    pub by_id: i64,
    /// Who was added, removed or left.
    pub user_id: Option<i64>,
    /// The new subject, for `renamed`.
    pub subject: Option<String>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
