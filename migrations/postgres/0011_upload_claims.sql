-- Claims of uploads in progress (issue 19), PostgreSQL edition of
-- ../0011_upload_claims.sql: which node's stream is receiving an upload,
-- which of its claims it is, and until when (ms) the claim holds unless
-- renewed. Null: nobody.
alter table uploads add column claim_node bigint;
alter table uploads add column claim_id bigint;
alter table uploads add column claim_until bigint;
