-- Who may see what (issue 17, DESIGN.md 1a): room kinds, roles, invitations,
-- bans and tenant admins. Whoever may not read a room cannot tell that it
-- exists; the service decides that in one place (service/src/access.rs) from
-- the rows below.

-- public: anyone in the tenant sees and joins it; private: members (by
-- invitation) and the tenant's admins; dm: a direct message, a fixed set of
-- 2 to 16 users.
alter table rooms add column kind text not null default 'public'
    check (kind in ('public', 'private', 'dm'));

-- The room's id on the wire: '+' and 16 random lower-case hex digits, made by
-- the server, never reused or changed. Random rather than the row id, so an
-- id says nothing about how many rooms the server holds.
alter table rooms add column handle text;
update rooms set handle = '+' || lower(hex(randomblob(8)));
create unique index rooms_handle on rooms (tenant_id, handle);

-- `name` stays unique per tenant and is what requests and messages call the
-- room. A public room's name is its own; a private room's or a DM's `name`
-- is its handle, so a private room never takes a name away from anyone who
-- cannot see it (creating a room of that name must answer as if it did not
-- exist). The name a private room was given lives in `title`.
alter table rooms add column title text;
create index rooms_title on rooms (tenant_id, title) where title is not null;

alter table rooms add column topic text not null default '';
-- Archived: read-only, history kept.
alter table rooms add column archived integer not null default 0;

-- A DM's members as their sorted user ids ('12,40,41'): opening a DM with
-- the same set of people finds the same room, whoever opens it.
alter table rooms add column dm_key text;
create unique index rooms_dm_key on rooms (tenant_id, dm_key) where dm_key is not null;

-- The creator is owner; rooms made before roles existed have none (the
-- tenant's admins act as owners).
alter table memberships add column role text not null default 'member'
    check (role in ('owner', 'moderator', 'member'));

-- Invited, not yet joined: the room is visible to the invitee, who may join
-- it. A join or a leave (declining) removes the row.
create table invitations (
    tenant_id  integer not null references tenants(id) on delete cascade,
    room_id    integer not null references rooms(id) on delete cascade,
    user_id    integer not null references users(id) on delete cascade,
    invited_by integer references users(id) on delete set null,
    created_at integer not null,
    primary key (room_id, user_id)
);
create index invitations_user on invitations (tenant_id, user_id);

-- A banned user may not join, be invited or post, and does not see a
-- private room at all, until unbanned.
create table bans (
    tenant_id  integer not null references tenants(id) on delete cascade,
    room_id    integer not null references rooms(id) on delete cascade,
    user_id    integer not null references users(id) on delete cascade,
    banned_by  integer references users(id) on delete set null,
    reason     text    not null default '',
    created_at integer not null,
    primary key (room_id, user_id)
);
create index bans_user on bans (tenant_id, user_id);

-- Tenant admins hold owner rights in every public and private room of their
-- tenant (never in DMs).
alter table users add column admin integer not null default 0;

-- A system message's change as JSON (the protocol's `change` object), so
-- clients can act on who did what; null for other messages.
alter table messages add column change text;
