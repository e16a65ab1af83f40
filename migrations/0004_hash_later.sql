-- Hash-later uploads (PROTOCOL.md §9.2): a client may begin an upload with the
-- BLAKE3 of the file's first MiB (`head`) instead of the whole file's hash and
-- send the digest at the end of the stream, so a new file is read once and its
-- bytes start moving at once. Such an upload has no hash until its stream's
-- trailer brings one. SQLite cannot drop a NOT NULL: the table is rebuilt.
create table uploads_next (
    id         text    primary key,
    tenant_id  integer not null references tenants(id) on delete cascade,
    user_id    integer not null references users(id) on delete cascade,
    room_id    integer not null references rooms(id) on delete cascade,
    -- sanitized display name.
    name       text    not null,
    size       integer not null,
    -- BLAKE3 of the content as declared; null for a hash-later upload.
    hash       text,
    -- BLAKE3 of the first MiB, for a hash-later upload; null otherwise.
    head       text,
    created_at integer not null,
    updated_at integer not null,
    check ((hash is null) <> (head is null))
);
insert into uploads_next (id, tenant_id, user_id, room_id, name, size, hash, created_at, updated_at)
    select id, tenant_id, user_id, room_id, name, size, hash, created_at, updated_at from uploads;
drop table uploads;
alter table uploads_next rename to uploads;
-- Lets a client that lost its upload id find the upload again.
create index uploads_resume on uploads (tenant_id, user_id, room_id, hash, size);
create index uploads_resume_head on uploads (tenant_id, user_id, room_id, head, size)
    where head is not null;

-- BLAKE3 of a stored file's first MiB (all of it when shorter), computed by the
-- server: a hash-later begin whose size and head match a stored file must send
-- the whole hash first. Null for files stored before this column: those match
-- on size alone.
alter table files add column head text;
create index files_size_head on files (tenant_id, size, head);
