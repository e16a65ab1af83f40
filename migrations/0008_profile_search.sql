-- Profiles, sessions one can list and revoke, and full-text search
-- (issue 18). Number 0008: 0007 is the access issue's, 0009 the other
-- message features'.

-- A name to show beside the user name (members, profile); null = none.
alter table users add column display_name text;

-- What a user sees of their sessions (`sessions`, `session.revoke`): an id
-- to name one by (16 hex digits of the token's hash: it says nothing about
-- the token), the client that logged in, the address it came from and when
-- the session was last used (log-in, resume, the end of a connection).
alter table sessions add column public_id text;
update sessions set public_id = lower(hex(substr(token_hash, 1, 8)));
create unique index sessions_public_id on sessions (tenant_id, user_id, public_id);
alter table sessions add column client text not null default '';
alter table sessions add column address text not null default '';
alter table sessions add column last_seen integer not null default 0;
update sessions set last_seen = created_at;

-- Search (PROTOCOL.md, `search`): an FTS5 index of the bodies of text and
-- file messages (a file message's body is its file name). Contentless: the
-- bodies live in `messages` only, and `messages` has no rowid, so each
-- message is indexed under room_id * 2^32 + seq (seqs stay below 2^32).
-- The triggers below keep it in step with every insert, update and delete
-- of a message, whoever makes them (an edit, a tombstone, a room's
-- deletion): a contentless index forgets a row only when told its old
-- text, which a trigger has. secure-delete: a deleted or edited body's
-- tokens are removed from the index at once, not left in old segments.
create virtual table messages_fts using fts5(
    body, content = '', tokenize = 'unicode61 remove_diacritics 2'
);
insert into messages_fts (messages_fts, rank) values ('secure-delete', 1);

create trigger messages_fts_insert after insert on messages
when new.kind in ('text', 'file') begin
    insert into messages_fts (rowid, body) values (new.room_id * 4294967296 + new.seq, new.body);
end;

create trigger messages_fts_delete after delete on messages
when old.kind in ('text', 'file') begin
    insert into messages_fts (messages_fts, rowid, body)
        values ('delete', old.room_id * 4294967296 + old.seq, old.body);
end;

create trigger messages_fts_update_old after update of body, kind on messages
when old.kind in ('text', 'file') begin
    insert into messages_fts (messages_fts, rowid, body)
        values ('delete', old.room_id * 4294967296 + old.seq, old.body);
end;

create trigger messages_fts_update_new after update of body, kind on messages
when new.kind in ('text', 'file') begin
    insert into messages_fts (rowid, body) values (new.room_id * 4294967296 + new.seq, new.body);
end;

insert into messages_fts (rowid, body)
    select room_id * 4294967296 + seq, body from messages where kind in ('text', 'file');
