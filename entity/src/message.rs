use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub public_id: String,
    pub thread_id: i64,
    pub sender_id: i64,
    pub recipient_id: i64,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub created_at: i64,
    /// Sender-chosen idempotency key, unique per sender.
    pub client_id: Option<String>,
    /// When its sender last edited its body (Unix microseconds); `None` if never.
    pub edited_at: Option<i64>,
    /// Its reactions as JSON, `[[emoji, [user ids]], ...]` in first-reacted order; `None`: none.
    #[sea_orm(column_type = "Text", nullable)]
    pub reactions: Option<String>,
    /// When its sender removed it for everyone (its body is then empty).
    pub removed_at: Option<i64>,
    /// The message it answers.
    pub reply_to_id: Option<i64>,
    /// What its view shows of the message it answers: `{url, sender, excerpt}` as JSON.
    #[sea_orm(column_type = "Text", nullable)]
    pub reply_to: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::thread::Entity",
        from = "Column::ThreadId",
        to = "super::thread::Column::Id",
        on_delete = "Cascade"
    )]
    Thread,
}

impl Related<super::thread::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Thread.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
