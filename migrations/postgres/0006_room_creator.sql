-- Who created each room (PostgreSQL edition of ../0006_room_creator.sql), so
-- a user's rooms can be counted against the per-user room quota (`[quotas]
-- rooms_per_user`, issue 22). Rooms made before this migration or by an
-- operator (`qchatd room create`) have no creator: they count against the
-- tenant's quota only. A deleted user's rooms stay, without a creator.
alter table rooms add column created_by bigint references users(id) on delete set null;
-- the per-user count is one index range.
create index rooms_creator on rooms (tenant_id, created_by) where created_by is not null;
