use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub username: String,
    /// argon2id PHC string; `None` for accounts that only log in with a Piratchat key.
    pub password_hash: Option<String>,
    /// SHA-256 (hex) of the Piratchat key, for key-based accounts.
    #[sea_orm(unique)]
    pub key_hash: Option<String>,
    #[sea_orm(unique)]
    pub websocket_id: String,
    pub is_admin: bool,
    pub created_at: i64,
    /// A werkzeug `pbkdf2:sha256:<rounds>$<salt>$<hex>` hash imported from Flask-Messaging,
    /// until its first login replaces it with `password_hash`. Never set for a native account.
    pub legacy_password_hash: Option<String>,
    /// The newest position of the user's event log (connection state recovery); 0 before any.
    pub log_seq: i64,
    /// The `gid` of the user's newest event log entry, where a replay starts following the
    /// chain back; 0 before any.
    pub log_gid: i64,
    /// Moves whenever the account's credentials end (a new password, ...): a Basic
    /// connection admitted at an earlier epoch is closed.
    pub credential_epoch: i64,
    /// Whether the user sends read receipts and sees others'.
    pub read_receipts: bool,
    /// The account's e-mail address (lowercase), for password resets once verified.
    pub email: Option<String>,
    pub email_verified: bool,
    /// The TOTP secret (base32) while two-factor is on.
    pub totp_secret: Option<String>,
    /// A secret being set up, until its first code confirms it.
    pub totp_pending: Option<String>,
    /// The last TOTP time step used: a code works once.
    pub totp_last_step: i64,
    /// Disabled by an operator: no login, no Basic.
    pub disabled: bool,
    /// When the account was deleted (its name stays reserved; its messages show as from a
    /// deleted user).
    pub deleted_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::session::Entity")]
    Session,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
