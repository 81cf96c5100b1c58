-- Full-text search over journal entries (projections/src/journal_search.rs): an expression GIN
-- index on the entries' text, partial on the journal_entries model (every generation). The
-- search query repeats the predicate literally so the planner can use the index.
CREATE INDEX read_model_rows_journal_text ON read_model_rows
    USING GIN (to_tsvector('english', doc->>'text'))
    WHERE model LIKE 'journal_entries@%';
