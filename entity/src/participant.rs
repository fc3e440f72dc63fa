use sea_orm::entity::prelude::*;

/// One user's view of one thread: ordering key, read watermark, deletion mark and unread count.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "participants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub thread_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    /// Newest message of the thread (copied here so a user's inbox is one index range).
    pub last_message_id: i64,
    /// Messages with an id up to this one have been read by this user.
    pub read_up_to: i64,
    /// Messages with an id up to this one are hidden for this user (thread deleted).
    pub hidden_before: i64,
    /// Unread messages for this user in this thread.
    pub unread: i32,
    /// The thread's newest message when this member joined: they see only later ones.
    pub joined_after: i64,
    /// The thread's newest message when this member left or was removed: they keep what came
    /// up to it and hear nothing new. `None` while a member.
    pub member_until: Option<i64>,
    /// When they joined (Unix microseconds): the longest-standing member takes over the
    /// creator's right to remove once the creator leaves.
    pub joined_at: i64,
    /// Until when this member hears no pushes for the thread (Unix microseconds; `i64::MAX`
    /// until they unmute it). `None`: not muted.
    pub muted_until: Option<i64>,
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
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::thread::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Thread.def()
    }
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
