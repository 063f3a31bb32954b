-- Schema version 6: stored clusterings of failed runs, so last week's meeting can be reopened as it was.
CREATE TABLE IF NOT EXISTS clusterings (
    clustering_id VARCHAR PRIMARY KEY,
    name          VARCHAR,              -- optional title, e.g. "weekly review 46"
    created_at    TIMESTAMP NOT NULL,
    created_by    VARCHAR,
    method        VARCHAR,              -- kmeans-merge / kmeans / hdbscan
    params        JSON,                 -- every FailureClusterer parameter
    filter        JSON,                 -- the run selection (RunFilter)
    period_from   DATE,                 -- first and last day of the clustered runs (or of the filter)
    period_to     DATE,
    n_runs        INTEGER,              -- failed runs clustered
    n_selected    INTEGER,              -- runs in the selection, failed or not
    n_clusters    INTEGER,
    clusters      JSON                  -- {"table": [cluster table rows], "profiles": {cluster: {term: weight}}}
);

CREATE TABLE IF NOT EXISTS cluster_members (
    clustering_id VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL,
    cluster       INTEGER NOT NULL,     -- 0 = largest cluster; -1 = left unclustered (HDBSCAN noise)
    cluster_name  VARCHAR,
    x             DOUBLE,               -- position on the cluster map
    y             DOUBLE,
    distance      DOUBLE,               -- cosine distance to the cluster's centre
    PRIMARY KEY (clustering_id, run_id)
);
