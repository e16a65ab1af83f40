-- Mentions and unread counts (issue 18), PostgreSQL edition of
-- ../0010_mentions.sql (the comments there say why).
-- Number 0010: 0009 is edits, deletions, reactions and replies.

create index messages_unread on messages (room_id, seq, sender_id, kind, deleted_at)
    where kind <> 'system' and deleted_at is null;

alter table messages add column mentions_room boolean not null default false;
create index messages_mentions_room on messages (room_id, seq, sender_id, mentions_room)
    where mentions_room;

create table mentions (
    tenant_id bigint not null references tenants(id) on delete cascade,
    room_id   bigint not null references rooms(id) on delete cascade,
    seq       bigint not null,
    user_id   bigint not null references users(id) on delete cascade,
    primary key (room_id, seq, user_id),
    foreign key (room_id, seq) references messages (room_id, seq) on delete cascade
);
create index mentions_user on mentions (room_id, user_id, seq);

alter table memberships add column joined_seq bigint not null default 0;
