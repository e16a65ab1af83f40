-- File transfer. Content lives on disk in a per-tenant content-addressed store
-- (<data>/files/<tenant_id>/<first two hex>/<blake3 hex>); these rows are the
-- truth about what is stored. A file row and its file message are written in
-- one transaction, so neither exists without the other.

create table files (
    id         integer primary key,
    tenant_id  integer not null references tenants(id) on delete cascade,
    -- BLAKE3 of the content, lower-case hex.
    hash       text    not null,
    size       integer not null,
    created_at integer not null,
    unique (tenant_id, hash)
);

-- Which file a `kind = 'file'` message offers (body holds the display name).
alter table messages add column file_id integer references files(id);
create index messages_file on messages (file_id) where file_id is not null;

-- Uploads in progress. The bytes received so far live in
-- <data>/uploads/<id>.part; the row says what they are meant to become.
create table uploads (
    id         text    primary key,
    tenant_id  integer not null references tenants(id) on delete cascade,
    user_id    integer not null references users(id) on delete cascade,
    room_id    integer not null references rooms(id) on delete cascade,
    -- sanitized display name.
    name       text    not null,
    size       integer not null,
    hash       text    not null,
    created_at integer not null,
    updated_at integer not null
);
-- Lets a client that lost its upload id find the upload again.
create index uploads_resume on uploads (tenant_id, user_id, room_id, hash, size);
