-- PostgreSQL edition of ../0012_search_edits.sql: nothing to repair here
-- (the search column is generated from the body, so an edit re-indexes it
-- whole); the file keeps the two folders' numbers in step.
select 1;
