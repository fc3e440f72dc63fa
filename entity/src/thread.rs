use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "threads")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub public_id: String,
    pub subject: String,
    pub created_at: i64,
    /// Timestamp of the newest message; never decreases.
    pub updated_at: i64,
    pub last_message_id: Option<i64>,
    /// `direct` (two people, membership fixed) or `group`.
    pub kind: String,
    /// The member who holds the right to remove others: the creator, then the longest-standing
    /// member once the creator leaves. Null only for a thread with no message (never stored).
    pub created_by: Option<i64>,
    /// Moves with every change of membership or subject (a commit hands it back, so that a
    /// cached copy of the thread is read again).
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::participant::Entity")]
    Participant,
    #[sea_orm(has_many = "super::message::Entity")]
    Message,
}

impl Related<super::participant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Participant.def()
    }
}

impl Related<super::message::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Message.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
