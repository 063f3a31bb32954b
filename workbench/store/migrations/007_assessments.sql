-- Schema version 7: maturity assessment snapshots, so a quarter's scorecard can be compared with the last one.
CREATE TABLE IF NOT EXISTS assessments (
    assessment_id     VARCHAR PRIMARY KEY,  -- sha256(name, taken_at, framework version)[:16]
    taken_at          TIMESTAMP NOT NULL,   -- UTC
    name              VARCHAR NOT NULL,     -- the scope assessed, e.g. "fleet"; snapshots of one name are compared
    framework_version VARCHAR NOT NULL,     -- `version` of the framework file the levels were computed with
    answers           JSON,                 -- questionnaire: {question id: chosen answer}
    result            JSON NOT NULL         -- the whole assessment (levels, criteria, evidence, remediation)
);
