//! `hello`, `register`, `login`, `resume`, `logout`; the caller's own
//! account: `profile`, `profile.set`, `passwd`, `sessions`,
//! `session.revoke`.

use std::net::SocketAddr;

use futures_util::TryStreamExt as _;
use qchat_protocol::{
    Credentials, ErrorCode, Hello, HelloOk, LoginOk, MAX_DISPLAY_NAME_LEN, MAX_FRAME_LEN,
    MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, PROTOCOL_VERSION, PasswdOk, PasswdReq, ProfileOk,
    ProfileReq, ProfileSetReq, Resume, SessionInfo, SessionsOk, SessionsReq, valid_display_name,
    valid_session_id,
};
use serde_json::Value;

use super::Caller;
use super::{check_name, empty, ok};
use crate::auth;
use crate::db::{self, TenantId, UserId};
use crate::error::{Result, refuse};
use crate::paging;
use crate::state::{Login, Shared};

/// Longest client name a session records, in characters.
const MAX_CLIENT_NAME: usize = 64;

/// A client name as a session records it: control characters dropped, cut
/// to [`MAX_CLIENT_NAME`] characters.
fn client_name(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(MAX_CLIENT_NAME).collect()
}

/// `hello`; with a `tenant`, also whether `register` is open there, so a
/// client can offer registration only where it would work. An unknown or
/// invalid tenant reads as closed (`register` would be refused too), which
/// tells no more than `register`'s own `not_found` does.
pub(super) async fn hello(s: &Shared, caller: &mut Caller<'_>, h: &Hello) -> Result<Value> {
    tracing::debug!(client = %h.client.chars().take(64).collect::<String>(), version = h.version, "hello");
    if !h.client.is_empty() {
        *caller.client = client_name(&h.client);
    }
    let open_registration = match h.tenant.as_deref() {
        None => None,
        Some(t) if !qchat_protocol::valid_name(t) => Some(false),
        Some(t) => {
            Some(db::tenants::by_name(&s.pool, t).await?.is_some_and(|t| t.open_registration))
        }
    };
    ok(&HelloOk {
        server: concat!("qchatd/", env!("CARGO_PKG_VERSION")).into(),
        version: PROTOCOL_VERSION,
        max_frame: MAX_FRAME_LEN as u64,
        open_registration,
    })
}

fn not_twice(caller: &Caller<'_>) -> Result<()> {
    if caller.login.is_some() {
        return Err(refuse(ErrorCode::Conflict, "already logged in on this connection"));
    }
    Ok(())
}

fn unauthorized() -> crate::error::Error {
    refuse(ErrorCode::Unauthorized, "wrong tenant, user or password")
}

pub(super) async fn register(s: &Shared, caller: &mut Caller<'_>, c: Credentials) -> Result<Value> {
    not_twice(caller)?;
    check_name("tenant", &c.tenant)?;
    check_name("user", &c.user)?;
    if c.password.len() < MIN_PASSWORD_LEN || c.password.len() > MAX_PASSWORD_LEN {
        return Err(refuse(
            ErrorCode::BadRequest,
            format!("password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    let pool = &s.pool;
    let tenant = db::tenants::by_name(pool, &c.tenant)
        .await?
        .ok_or_else(|| refuse(ErrorCode::NotFound, format!("no tenant named {}", c.tenant)))?;
    if !tenant.open_registration {
        return Err(refuse(ErrorCode::Forbidden, "this tenant does not allow self-registration"));
    }
    let hash = s.auth.hash(&c.password).await?;
    let user = db::users::create(pool, tenant.id, &c.user, &hash).await.map_err(|e| match e {
        db::DbError::Conflict => refuse(ErrorCode::Conflict, format!("user {} exists", c.user)),
        e => e.into(),
    })?;
    tracing::info!(tenant = %tenant.name, user = %c.user, "registered");
    start_session(s, caller, c.client.as_deref(), tenant.id, tenant.name, user, c.user).await
}

/// `login`. The names and the password's length are checked first
/// (`bad_request`, no attempt counted); then the attempt is counted against
/// the address's allowance before the password is checked, and given back
/// only if it succeeds, so attempts made at once cannot pass the limit
/// together.
pub(super) async fn login(s: &Shared, caller: &mut Caller<'_>, c: Credentials) -> Result<Value> {
    not_twice(caller)?;
    check_name("tenant", &c.tenant)?;
    check_name("user", &c.user)?;
    if c.password.len() > MAX_PASSWORD_LEN {
        return Err(refuse(
            ErrorCode::BadRequest,
            format!("a password is at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    let attempt = s.auth.reserve_attempt(caller.remote.ip()).ok_or_else(rate_limited)?;
    let pool = &s.pool;
    let tenant = db::tenants::by_name(pool, &c.tenant).await?;
    let user = match &tenant {
        Some(t) => db::users::by_name(pool, t.id, &c.user).await?,
        None => None,
    };
    let verified =
        s.auth.verify(&c.password, user.as_ref().map(|u| u.password_hash.as_str())).await?;
    match (tenant, user) {
        (Some(t), Some(u)) if verified && !u.disabled => {
            drop(attempt);
            tracing::info!(tenant = %t.name, user = %u.name, "logged in");
            start_session(s, caller, c.client.as_deref(), t.id, t.name, u.id, u.name).await
        }
        _ => {
            attempt.failed();
            tracing::info!(tenant = %c.tenant, user = %c.user, "failed login");
            Err(unauthorized())
        }
    }
}

fn rate_limited() -> crate::error::Error {
    refuse(ErrorCode::RateLimited, "too many failed logins; wait a minute")
}

/// `resume`: refused while the address's failed-log-in allowance is spent,
/// and a dead token counts against it like a wrong password. Unlike
/// `login` it holds no place while checked (one indexed lookup, no
/// argon2), so the many clients behind one NAT can resume at once.
pub(super) async fn resume(s: &Shared, caller: &mut Caller<'_>, r: Resume) -> Result<Value> {
    not_twice(caller)?;
    let ip = caller.remote.ip();
    if !s.auth.allows(ip) {
        return Err(rate_limited());
    }
    let hash = auth::token_hash(&r.token);
    let Some(found) = db::sessions::lookup(&s.pool, &hash).await? else {
        s.auth.count_failure(ip);
        return Err(refuse(ErrorCode::Unauthorized, "session expired or revoked; log in again"));
    };
    if found.disabled {
        return Err(refuse(ErrorCode::Unauthorized, "account disabled"));
    }
    let login = Login {
        tenant: found.tenant,
        tenant_name: found.tenant_name,
        user: found.user,
        user_name: found.user_name,
        token_hash: hash,
    };
    tracing::info!(tenant = %login.tenant_name, user = %login.user_name, "resumed");
    let client = r.client.as_deref().map_or_else(|| caller.client.clone(), client_name);
    let address = caller.remote.ip().to_string();
    let origin = db::sessions::Origin { client: &client, address: &address };
    db::sessions::touch(&s.pool, login.tenant, &login.token_hash, origin).await?;
    let reply = LoginOk {
        tenant: login.tenant_name.clone(),
        user: login.user_name.clone(),
        token: r.token,
    };
    attach(s, caller, login).await?;
    ok(&reply)
}

async fn start_session(
    s: &Shared,
    caller: &mut Caller<'_>,
    client: Option<&str>,
    tenant: TenantId,
    tenant_name: String,
    user: UserId,
    user_name: String,
) -> Result<Value> {
    let (token, hash) = auth::new_token();
    let ttl = s.config.limits.session_ttl();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let client = client.map_or_else(|| caller.client.clone(), client_name);
    let address = caller.remote.ip().to_string();
    let origin = db::sessions::Origin { client: &client, address: &address };
    let expires = db::now_ms().saturating_add(ttl_ms);
    db::sessions::create(&s.pool, tenant, user, &hash, expires, origin).await?;
    let reply = LoginOk { tenant: tenant_name.clone(), user: user_name.clone(), token };
    attach(s, caller, Login { tenant, tenant_name, user, user_name, token_hash: hash }).await?;
    ok(&reply)
}

/// How long a log-in waits for a starting cluster node to reach NATS.
const WAIT_BUS: std::time::Duration = std::time::Duration::from_secs(5);

/// Subscribes the connection to the user's rooms and marks it online.
async fn attach(s: &Shared, caller: &mut Caller<'_>, login: Login) -> Result<()> {
    // A node that has not reached the bus yet would miss what other nodes
    // say about this user meanwhile (nothing replays an invitation).
    s.hub.wait_bus(WAIT_BUS).await;
    let rooms: Vec<_> = db::rooms::user_rooms(&s.pool, login.tenant, login.user)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    s.hub.attach(caller.id, login.tenant, login.user, &login.user_name, caller.out.clone(), &rooms);
    s.hub.bind_session(caller.id, login.token_hash.clone(), caller.kick.clone());
    s.metrics.login_ok();
    *caller.login = Some(login);
    Ok(())
}

pub(super) async fn logout(s: &Shared, login: &Login) -> Result<Value> {
    db::sessions::delete(&s.pool, login.tenant, &login.token_hash).await?;
    tracing::info!(tenant = %login.tenant_name, user = %login.user_name, "logged out");
    empty()
}

/// `profile`: the caller's or another user's of the tenant.
pub(super) async fn profile(s: &Shared, login: &Login, r: ProfileReq) -> Result<Value> {
    let user = r.user.unwrap_or_else(|| login.user_name.clone());
    check_name("user", &user)?;
    let display_name = db::users::display_name(&s.pool, login.tenant, &user)
        .await?
        .ok_or_else(|| refuse(ErrorCode::NotFound, format!("no user named {user}")))?;
    ok(&ProfileOk { user, display_name })
}

/// `profile.set`: sets or clears the caller's display name.
pub(super) async fn profile_set(s: &Shared, login: &Login, r: ProfileSetReq) -> Result<Value> {
    let name = r.display_name.filter(|n| !n.is_empty());
    if let Some(n) = &name {
        if n.len() > MAX_DISPLAY_NAME_LEN {
            return Err(refuse(
                ErrorCode::TooLarge,
                format!("a display name is at most {MAX_DISPLAY_NAME_LEN} bytes"),
            ));
        }
        if !valid_display_name(n) {
            return Err(refuse(
                ErrorCode::BadRequest,
                "a display name has no control characters nor white space at its ends",
            ));
        }
    }
    db::users::set_display_name(&s.pool, login.tenant, login.user, name.as_deref()).await?;
    empty()
}

/// `passwd`: checks the old password like a log-in (counted against the
/// address's failed log-ins), stores the new one's hash and revokes every
/// other session of the user in one transaction, then ends the
/// connections that used them.
pub(super) async fn passwd(
    s: &Shared,
    login: &Login,
    remote: SocketAddr,
    r: PasswdReq,
) -> Result<Value> {
    if r.old_password.len() > MAX_PASSWORD_LEN
        || r.new_password.len() < MIN_PASSWORD_LEN
        || r.new_password.len() > MAX_PASSWORD_LEN
    {
        return Err(refuse(
            ErrorCode::BadRequest,
            format!("a password is {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    let attempt = s.auth.reserve_attempt(remote.ip()).ok_or_else(rate_limited)?;
    let hash = db::users::password_hash(&s.pool, login.tenant, login.user).await?;
    if !s.auth.verify(&r.old_password, hash.as_deref()).await? {
        attempt.failed();
        return Err(refuse(ErrorCode::Unauthorized, "wrong password"));
    }
    drop(attempt);
    let new_hash = s.auth.hash(&r.new_password).await?;
    let mut tx = s.pool.begin_write().await?;
    db::users::set_password_hash(&mut tx, login.tenant, login.user, &new_hash).await?;
    let revoked =
        db::sessions::revoke_others(&mut tx, login.tenant, login.user, &login.token_hash).await?;
    tx.commit().await?;
    s.hub.revoke(&revoked);
    tracing::info!(
        tenant = %login.tenant_name, user = %login.user_name, revoked = revoked.len(),
        "password changed"
    );
    ok(&PasswdOk { revoked: revoked.len() as u64 })
}

/// `sessions`: the caller's sessions by id, as many as fit in one frame.
pub(super) async fn sessions(s: &Shared, login: &Login, r: SessionsReq) -> Result<Value> {
    if let Some(after) = &r.after
        && !valid_session_id(after)
    {
        return Err(refuse(ErrorCode::BadRequest, "after must be a session id"));
    }
    let hub = &s.hub;
    let rows = db::sessions::of_user(&s.pool, login.tenant, login.user, r.after.as_deref()).map_ok(
        |row| SessionInfo {
            connected: hub.session_connected(&row.token_hash),
            current: row.token_hash == login.token_hash,
            id: row.public_id,
            client: row.client,
            address: row.address,
            created: row.created_at,
            last_seen: row.last_seen,
        },
    );
    let (sessions, more) = paging::fill(rows, usize::MAX).await?;
    ok(&SessionsOk { sessions, more })
}

/// `session.revoke`: deletes one of the caller's sessions and ends the
/// connections logged in with it (the asking one too, after the reply,
/// when it names its own).
pub(super) async fn revoke(s: &Shared, login: &Login, id: &str) -> Result<Value> {
    if !valid_session_id(id) {
        return Err(refuse(ErrorCode::BadRequest, "a session id is 16 lower-case hex digits"));
    }
    let hash = db::sessions::revoke(&s.pool, login.tenant, login.user, id)
        .await?
        .ok_or_else(|| refuse(ErrorCode::NotFound, format!("no session {id}")))?;
    s.hub.revoke(&[hash]);
    tracing::info!(tenant = %login.tenant_name, user = %login.user_name, session = id, "session revoked");
    empty()
}
