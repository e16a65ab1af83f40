-- Hash-later uploads (PROTOCOL.md §9.2), PostgreSQL edition of
-- ../0004_hash_later.sql (which rebuilds the table: SQLite cannot drop a NOT
-- NULL; PostgreSQL can). A client may begin an upload with the BLAKE3 of the
-- file's first MiB (`head`) instead of the whole file's hash and send the
-- digest at the end of the stream. Such an upload has no hash until its
-- stream's trailer brings one.
alter table uploads alter column hash drop not null;
-- BLAKE3 of the first MiB, for a hash-later upload; null otherwise.
alter table uploads add column head text;
alter table uploads add constraint uploads_hash_or_head check ((hash is null) <> (head is null));
create index uploads_resume_head on uploads (tenant_id, user_id, room_id, head, size)
    where head is not null;

-- BLAKE3 of a stored file's first MiB (all of it when shorter), computed by the
-- server: a hash-later begin whose size and head match a stored file must send
-- the whole hash first. Null for files stored before this column: those match
-- on size alone.
alter table files add column head text;
create index files_size_head on files (tenant_id, size, head);
