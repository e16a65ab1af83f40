-- Profiles, sessions one can list and revoke, and full-text search
-- (issue 18; PostgreSQL edition of ../0008_profile_search.sql). Number
-- 0008: 0007 is the access issue's, 0009 the other message features'.

-- A name to show beside the user name (members, profile); null = none.
alter table users add column display_name text;

-- What a user sees of their sessions (`sessions`, `session.revoke`): an id
-- to name one by (16 hex digits of the token's hash: it says nothing about
-- the token), the client that logged in, the address it came from and when
-- the session was last used (log-in, resume, the end of a connection).
alter table sessions add column public_id text collate "C";
update sessions set public_id = encode(substring(token_hash from 1 for 8), 'hex');
create unique index sessions_public_id on sessions (tenant_id, user_id, public_id);
alter table sessions add column client text not null default '';
alter table sessions add column address text not null default '';
alter table sessions add column last_seen bigint not null default 0;
update sessions set last_seen = created_at;

-- Search (PROTOCOL.md, `search`): the words of the bodies of text and file
-- messages (a file message's body is its file name) in a generated column,
-- so every insert, edit or tombstone of a body updates it in the same
-- statement, and a GIN index over it. The 'simple' configuration: no
-- stemming or stop words, words lower-cased, as SQLite's unicode61
-- tokenizer does (which also folds diacritics; this does not). Punctuation
-- becomes space first: PostgreSQL's parser would keep `report.pdf`,
-- `ann@example.org` or `a-b` whole, where SQLite (and the query) see
-- separate words.
alter table messages add column search tsvector generated always as (
    to_tsvector('simple', case when kind in ('text', 'file')
        then regexp_replace(body, '[[:punct:][:space:][:cntrl:]]+', ' ', 'g') else '' end)
) stored;
create index messages_search on messages using gin (search);
