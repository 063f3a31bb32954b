-- Schema version 4: the failure taxonomy (every version kept, so old labels keep their meaning) and the
-- review queue's assignments.
CREATE TABLE IF NOT EXISTS taxonomy (
    version     VARCHAR NOT NULL,      -- content hash of the taxonomy file it came from
    code        VARCHAR NOT NULL,      -- dotted: the part before the first dot is the group
    parent      VARCHAR,               -- the group code (e.g. tool for tool.wrong_tool)
    name        VARCHAR NOT NULL,
    description VARCHAR,
    key         VARCHAR,               -- keyboard key on the Review page
    loaded_at   TIMESTAMP,
    PRIMARY KEY (version, code)
);

CREATE TABLE IF NOT EXISTS assignments (
    run_id      VARCHAR NOT NULL,
    reviewer    VARCHAR NOT NULL,
    assigned_by VARCHAR,
    assigned_at TIMESTAMP,
    PRIMARY KEY (run_id, reviewer)
);
