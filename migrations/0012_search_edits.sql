-- Search kept only an edit's new words (issue 18): 0008's two update
-- triggers fire newest first, so an edit indexed the new body before it
-- removed the old one's tokens, and the removal took every word the two
-- bodies share (an edit of "lunch at noon" to "lunch at one" was found by
-- "one" only). One trigger now takes the old body out, then puts the new
-- one in, in that order.
-- Number 0012: 0010 is mentions; 0011 is taken by the cluster work
-- (upload claims) in flight.
drop trigger messages_fts_update_old;
drop trigger messages_fts_update_new;
create trigger messages_fts_update after update of body, kind on messages begin
    insert into messages_fts (messages_fts, rowid, body)
        select 'delete', old.room_id * 4294967296 + old.seq, old.body
        where old.kind in ('text', 'file');
    insert into messages_fts (rowid, body)
        select new.room_id * 4294967296 + new.seq, new.body
        where new.kind in ('text', 'file');
end;

-- The entries of messages edited before this migration are damaged:
-- index every body again.
insert into messages_fts (messages_fts) values ('delete-all');
insert into messages_fts (rowid, body)
    select room_id * 4294967296 + seq, body from messages where kind in ('text', 'file');
