-- Claims of uploads in progress (issue 19): which node's stream is
-- receiving an upload (a random id per node process), which of that node's
-- claims it is, and until when (ms) the claim holds unless renewed. Null:
-- nobody. A node renews its claims' leases every two seconds; a claim left
-- by a node that died is taken over once its lease has run out. A single
-- node keeps these null (its streams claim in memory only).
alter table uploads add column claim_node integer;
alter table uploads add column claim_id integer;
alter table uploads add column claim_until integer;
