use sea_orm::entity::prelude::*;

/// A browser's Web Push subscription (RFC 8030), bound to the login session that made it:
/// ending the session deletes it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "push_subscriptions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub session_id: String,
    /// The push service's URL for this subscription (unique: a browser re-subscribing with
    /// another session takes it over).
    pub endpoint: String,
    /// The browser's P-256 public key (base64url, uncompressed point), RFC 8291's `ua_public`.
    pub p256dh: String,
    /// The browser's authentication secret (base64url, 16 bytes).
    pub auth: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
