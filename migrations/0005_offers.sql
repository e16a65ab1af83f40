-- File offers (PROTOCOL.md §9.1). A file message offers stored content to a
-- room under a name of its own. The wire's file id used to be `files.id`, the
-- content's: three offers of the same content shared one id, and `file.get`
-- answered with whichever offer's name it found first, so a user fetching an
-- older offer got another offer's name. Each offer now has its own id, and
-- that id is what the protocol calls a file id; `files.id` stays internal
-- (the content, stored once per tenant).
create table offers (
    -- AUTOINCREMENT: an id once handed out is never given to another offer,
    -- even after the newest offer is deleted with its room.
    id        integer primary key autoincrement,
    tenant_id integer not null references tenants(id) on delete cascade,
    room_id   integer not null references rooms(id) on delete cascade,
    -- The file message that makes the offer; its body is the offer's name.
    seq       integer not null,
    -- The content offered.
    file_id   integer not null references files(id),
    unique (room_id, seq),
    foreign key (room_id, seq) references messages (room_id, seq) on delete cascade
);

-- Offers of what is stored already. The first offer of each file (by commit
-- time) keeps the file's id, so an id handed out before this migration still
-- fetches that content, now under the name of its first offer.
insert into offers (id, tenant_id, room_id, seq, file_id)
    select file_id, tenant_id, room_id, seq, file_id from (
        select m.file_id, m.tenant_id, m.room_id, m.seq,
               row_number() over (partition by m.file_id order by m.ts, m.room_id, m.seq) as n
        from messages m where m.file_id is not null
    ) where n = 1;

-- Every other offer, and every new one, is numbered above every file id
-- handed out so far, so no old id names another offer.
delete from sqlite_sequence where name = 'offers';
insert into sqlite_sequence (name, seq)
    select 'offers', max(coalesce((select max(id) from files), 0),
                         coalesce((select max(id) from offers), 0));
insert into offers (tenant_id, room_id, seq, file_id)
    select m.tenant_id, m.room_id, m.seq, m.file_id from messages m
    where m.file_id is not null
      and not exists (select 1 from offers o where o.room_id = m.room_id and o.seq = m.seq)
    order by m.ts, m.room_id, m.seq;
