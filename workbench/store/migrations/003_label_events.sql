-- Schema version 3: append-only label events. Current labels are derived from them (a view, built by the
-- labeling module); nothing here is ever updated or deleted, so every judgment keeps its author and time.
CREATE TABLE IF NOT EXISTS label_events (
    event_id         VARCHAR PRIMARY KEY,  -- deterministic for imported labels, random for reviewers' actions
    run_id           VARCHAR NOT NULL,
    step_id          VARCHAR,              -- NULL: the label is on the whole run
    code             VARCHAR NOT NULL,     -- taxonomy code, e.g. tool.wrong_tool
    severity         VARCHAR,              -- low / medium / high / critical
    note             VARCHAR,
    reviewer         VARCHAR NOT NULL,     -- a person, or `imported` for labels that came with a trace file
    created_at       TIMESTAMP NOT NULL,
    action           VARCHAR NOT NULL,     -- add / remove; settle_add / settle_remove decide a disagreement
    taxonomy_version VARCHAR,
    source           VARCHAR,              -- app, bulk:<batch>, import:<import_id>, notebook
    batch_id         VARCHAR               -- events made by one bulk action share it (undo takes the batch)
);
