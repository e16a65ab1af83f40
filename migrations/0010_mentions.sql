-- Mentions and unread counts (issue 18, PROTOCOL.md "Unread and mentions").
-- Number 0010: 0009 is edits, deletions, reactions and replies.

-- `unread` counts the text and file messages of others after the read
-- marker that are not deleted: one range of this index per room and user
-- (never the room's history), covering (every column the count reads is in
-- it), and without the system messages (joins, edits, reactions,
-- deletions) that make up a good part of a busy room. The counts name it
-- (`indexed by`): without statistics SQLite would walk the table's rows.
create index messages_unread on messages (room_id, seq, sender_id, kind, deleted_at)
    where kind <> 'system' and deleted_at is null;

-- A message that says `@room` mentions every member: one flag on the
-- message, not a row per member (a room of 10,000 would write 10,000 rows
-- per `@room`). Cleared when the message is deleted. Covering, as above.
alter table messages add column mentions_room integer not null default 0;
create index messages_mentions_room on messages (room_id, seq, sender_id, mentions_room)
    where mentions_room;

-- The members a message mentions by name (`@ann`), one row each; only
-- members of the room when it was sent. Gone with the message's deletion.
create table mentions (
    tenant_id integer not null references tenants(id) on delete cascade,
    room_id   integer not null references rooms(id) on delete cascade,
    seq       integer not null,
    user_id   integer not null references users(id) on delete cascade,
    primary key (room_id, seq, user_id),
    foreign key (room_id, seq) references messages (room_id, seq) on delete cascade
) without rowid;
-- A user's mentions in a room after their read marker: one range.
create index mentions_user on mentions (room_id, user_id, seq);

-- The room's last seq when the member joined: mentions (by name or
-- `@room`) from before this membership do not count for it. Memberships
-- made before this migration count from the room's start.
alter table memberships add column joined_seq integer not null default 0;
