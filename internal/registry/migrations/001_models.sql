-- Registered models, their versions, aliases and stage history.
-- JSON columns (tags, signature, metrics, params) are TEXT so both databases
-- store them the same way; times are Unix microseconds (UTC).
CREATE TABLE registered_models (
	name        TEXT PRIMARY KEY,
	description TEXT NOT NULL DEFAULT '',
	tags        TEXT NOT NULL DEFAULT '{}',
	created     BIGINT NOT NULL,
	updated     BIGINT NOT NULL
);

CREATE TABLE model_versions (
	model          TEXT NOT NULL REFERENCES registered_models (name) ON DELETE CASCADE,
	version        BIGINT NOT NULL CHECK (version > 0),
	source         TEXT NOT NULL,
	digest         TEXT NOT NULL DEFAULT '',
	backend        TEXT NOT NULL DEFAULT '',
	signature      TEXT NOT NULL DEFAULT '{}',
	tags           TEXT NOT NULL DEFAULT '{}',
	metrics        TEXT NOT NULL DEFAULT '{}',
	params         TEXT NOT NULL DEFAULT '{}',
	run_id         TEXT NOT NULL DEFAULT '',
	dataset_uri    TEXT NOT NULL DEFAULT '',
	dataset_hash   TEXT NOT NULL DEFAULT '',
	parent_version BIGINT NOT NULL DEFAULT 0,
	stage          TEXT NOT NULL DEFAULT 'None' CHECK (stage IN ('None', 'Staging', 'Production', 'Archived')),
	created_by     TEXT NOT NULL DEFAULT '',
	created        BIGINT NOT NULL,
	PRIMARY KEY (model, version)
);

CREATE TABLE model_aliases (
	model   TEXT NOT NULL,
	alias   TEXT NOT NULL,
	version BIGINT NOT NULL,
	updated BIGINT NOT NULL,
	PRIMARY KEY (model, alias),
	FOREIGN KEY (model, version) REFERENCES model_versions (model, version) ON DELETE CASCADE
);

CREATE TABLE stage_history (
	id         {{identity}},
	model      TEXT NOT NULL,
	version    BIGINT NOT NULL,
	from_stage TEXT NOT NULL,
	to_stage   TEXT NOT NULL,
	actor      TEXT NOT NULL,
	reason     TEXT NOT NULL DEFAULT '',
	at         BIGINT NOT NULL,
	FOREIGN KEY (model, version) REFERENCES model_versions (model, version) ON DELETE CASCADE
);

CREATE INDEX stage_history_version ON stage_history (model, version, id);

-- The audit trail has no foreign keys: it outlives what it describes.
CREATE TABLE audit_log (
	id     {{identity}},
	at     BIGINT NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	object TEXT NOT NULL,
	detail TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_log_object ON audit_log (object, id);
