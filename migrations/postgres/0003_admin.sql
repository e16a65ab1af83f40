-- Operator switches (`qchatd tenant|room disable`), PostgreSQL edition of
-- ../0003_admin.sql. Disabling keeps the rows, so `enable` undoes it;
-- `delete` is the irreversible way.
-- A disabled tenant: nobody in it can log in or resume a session.
alter table tenants add column disabled boolean not null default false;
-- A disabled room: not listed, and joining, reading or sending answer
-- not_found, as if it did not exist.
alter table rooms add column disabled boolean not null default false;
