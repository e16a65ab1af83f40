//! `hello`, `register`, `login`, `resume`, `logout`.

use qchat_protocol::{
    Credentials, ErrorCode, Hello, HelloOk, LoginOk, MAX_FRAME_LEN, MAX_PASSWORD_LEN,
    MIN_PASSWORD_LEN, PROTOCOL_VERSION, Resume,
};
use serde_json::Value;

use super::Caller;
use super::{check_name, empty, ok};
use crate::auth;
use crate::db::{self, TenantId, UserId};
use crate::error::{Result, refuse};
use crate::state::{Login, Shared};

/// `hello`; with a `tenant`, also whether `register` is open there, so a
/// client can offer registration only where it would work. An unknown or
/// invalid tenant reads as closed (`register` would be refused too), which
/// tells no more than `register`'s own `not_found` does.
pub(super) async fn hello(s: &Shared, h: &Hello) -> Result<Value> {
    tracing::debug!(client = %h.client.chars().take(64).collect::<String>(), version = h.version, "hello");
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
    start_session(s, caller, tenant.id, tenant.name, user, c.user).await
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
            start_session(s, caller, t.id, t.name, u.id, u.name).await
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

/// `resume`: counted against the address's allowance like `login`.
pub(super) async fn resume(s: &Shared, caller: &mut Caller<'_>, r: Resume) -> Result<Value> {
    not_twice(caller)?;
    let attempt = s.auth.reserve_attempt(caller.remote.ip()).ok_or_else(rate_limited)?;
    let hash = auth::token_hash(&r.token);
    let Some(found) = db::sessions::lookup(&s.pool, &hash).await? else {
        attempt.failed();
        return Err(refuse(ErrorCode::Unauthorized, "session expired or revoked; log in again"));
    };
    drop(attempt);
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
    tenant: TenantId,
    tenant_name: String,
    user: UserId,
    user_name: String,
) -> Result<Value> {
    let (token, hash) = auth::new_token();
    let ttl = s.config.limits.session_ttl();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    db::sessions::create(&s.pool, tenant, user, &hash, db::now_ms().saturating_add(ttl_ms)).await?;
    let reply = LoginOk { tenant: tenant_name.clone(), user: user_name.clone(), token };
    attach(s, caller, Login { tenant, tenant_name, user, user_name, token_hash: hash }).await?;
    ok(&reply)
}

/// Subscribes the connection to the user's rooms and marks it online.
async fn attach(s: &Shared, caller: &mut Caller<'_>, login: Login) -> Result<()> {
    let rooms: Vec<_> = db::rooms::user_rooms(&s.pool, login.tenant, login.user)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    s.hub.attach(caller.id, login.tenant, login.user, &login.user_name, caller.out.clone(), &rooms);
    s.metrics.login_ok();
    *caller.login = Some(login);
    Ok(())
}

pub(super) async fn logout(s: &Shared, login: &Login) -> Result<Value> {
    db::sessions::delete(&s.pool, login.tenant, &login.token_hash).await?;
    tracing::info!(tenant = %login.tenant_name, user = %login.user_name, "logged out");
    empty()
}
