//! What a quota counts ([`Created`]) and whose quota a creation would pass
//! ([`Scope`]): the vocabulary the quota check and the metrics share, in a
//! module of its own so that neither imports the other for it.

/// Something users create that counts against a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Created {
    /// A room (`room.create`).
    Room,
    /// A direct message (`dm.open` of a new one); counted for its opener.
    Dm,
    /// A pending invitation (`room.invite`); counted for who sent it until
    /// it is answered (joined, declined) or withdrawn (a ban).
    Invitation,
}

impl Created {
    /// Every kind, in metrics order.
    pub(crate) const ALL: [Self; 3] = [Self::Room, Self::Dm, Self::Invitation];

    /// The kind's name in messages and metrics labels.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Room => "room",
            Self::Dm => "dm",
            Self::Invitation => "invitation",
        }
    }

    /// Position in [`Self::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Room => 0,
            Self::Dm => 1,
            Self::Invitation => 2,
        }
    }
}

/// Which quota a creation would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The user's own.
    User,
    /// The tenant's, shared by its members.
    Tenant,
}

impl Scope {
    /// Every scope, in metrics order.
    pub(crate) const ALL: [Self; 2] = [Self::User, Self::Tenant];

    /// The scope's name in metrics labels.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Tenant => "tenant",
        }
    }
}
