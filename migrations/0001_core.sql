-- qchat core schema. Every table carries tenant_id and every query filters on
-- it, so one tenant can never read another's rows even through a bug in an id.
-- Times are milliseconds since the Unix epoch (UTC).

create table tenants (
    id                integer primary key,
    name              text    not null unique,
    -- 1 when anyone may create an account with the `register` op.
    open_registration integer not null default 0,
    created_at        integer not null
);

create table users (
    id            integer primary key,
    tenant_id     integer not null references tenants(id) on delete cascade,
    name          text    not null,
    -- argon2id PHC string; never the password itself.
    password_hash text    not null,
    disabled      integer not null default 0,
    created_at    integer not null,
    unique (tenant_id, name)
);

create table sessions (
    -- sha256 of the 32-byte token: a stolen database cannot resume sessions.
    token_hash  blob    primary key,
    tenant_id   integer not null references tenants(id) on delete cascade,
    user_id     integer not null references users(id) on delete cascade,
    created_at  integer not null,
    expires_at  integer not null
);
create index sessions_user on sessions (tenant_id, user_id);

create table rooms (
    id         integer primary key,
    tenant_id  integer not null references tenants(id) on delete cascade,
    name       text    not null,
    -- highest seq committed; the next message gets last_seq + 1 in the same
    -- transaction, which is what makes seqs gap-free and in commit order.
    last_seq   integer not null default 0,
    created_at integer not null,
    unique (tenant_id, name)
);

create table memberships (
    tenant_id  integer not null references tenants(id) on delete cascade,
    room_id    integer not null references rooms(id) on delete cascade,
    user_id    integer not null references users(id) on delete cascade,
    read_seq   integer not null default 0,
    joined_at  integer not null,
    primary key (room_id, user_id)
);
create index memberships_user on memberships (tenant_id, user_id);

create table messages (
    tenant_id     integer not null references tenants(id) on delete cascade,
    room_id       integer not null references rooms(id) on delete cascade,
    seq           integer not null,
    sender_id     integer references users(id) on delete set null,
    -- the sender's name at send time, so history survives account deletion.
    sender_name   text    not null,
    -- idempotency key from the client; null for system messages.
    client_msg_id text,
    kind          text    not null check (kind in ('text', 'file', 'system')),
    body          text    not null,
    ts            integer not null,
    primary key (room_id, seq)
) without rowid;
-- a retried send finds its original seq here instead of storing a duplicate.
create unique index messages_idempotency on messages (room_id, sender_id, client_msg_id)
    where client_msg_id is not null;
