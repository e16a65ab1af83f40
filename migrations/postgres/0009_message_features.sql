-- Edits, deletions, reactions and replies (issue 18), PostgreSQL edition
-- of ../0009_message_features.sql.
-- Number 0009: 0008 is profiles, sessions and search.

-- When the body was last edited (ms); null = never.
alter table messages add column edited bigint;
-- A deleted message is a tombstone: its body is emptied (and, with
-- secure_delete, overwritten in the file), who deleted it and when stay.
alter table messages add column deleted_by text;
alter table messages add column deleted_at bigint;
-- A reply: the seq of the message it answers, in the same room.
alter table messages add column reply_to bigint;
-- An edit's, deletion's or reaction's system message: the seq of the
-- message it acts on (so a deletion finds the edits whose text it erases).
alter table messages add column target_seq bigint;
create index messages_reply_to on messages (room_id, reply_to) where reply_to is not null;
create index messages_target on messages (room_id, target_seq) where target_seq is not null;

-- One row per user, message and emoji.
create table reactions (
    tenant_id bigint  not null references tenants(id) on delete cascade,
    room_id   bigint  not null references rooms(id) on delete cascade,
    seq       bigint  not null,
    user_id   bigint  not null references users(id) on delete cascade,
    emoji     text    not null,
    ts        bigint  not null,
    primary key (room_id, seq, emoji, user_id),
    foreign key (room_id, seq) references messages (room_id, seq) on delete cascade
);
