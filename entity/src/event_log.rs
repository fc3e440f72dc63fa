use sea_orm::entity::prelude::*;

/// One entry of a user's event log (connection state recovery): a native event sent to the
/// user's rooms, at position `seq` of that user. Entries are kept in commit order (`gid`);
/// `prev` is the `gid` of the same user's entry before this one, so each user's entries form a
/// chain back from `users.log_gid`. A `message:new` names its message (`ref_id`) and is
/// rendered again when replayed; other events keep their JSON `payload`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub gid: i64,
    pub user_id: i64,
    pub seq: i64,
    pub prev: Option<i64>,
    pub event: String,
    pub ref_id: Option<i64>,
    pub payload: Option<String>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
