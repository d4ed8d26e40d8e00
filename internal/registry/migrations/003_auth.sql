-- Tenants and their API keys. A key's secret is never stored: only the
-- SHA-256 of it (hash, hex), looked up by the key's public id. limits is JSON
-- owned by the admission layer; the registry only keeps it. Times are Unix
-- microseconds; revoked and last_used are 0 until they happen.
CREATE TABLE tenants (
	name    TEXT PRIMARY KEY,
	limits  TEXT NOT NULL DEFAULT '{}',
	created BIGINT NOT NULL
);

CREATE TABLE api_keys (
	id        TEXT PRIMARY KEY,
	tenant    TEXT NOT NULL REFERENCES tenants (name),
	role      TEXT NOT NULL CHECK (role IN ('infer', 'manage', 'admin')),
	models    TEXT NOT NULL DEFAULT '[]',
	hash      TEXT NOT NULL,
	created   BIGINT NOT NULL,
	revoked   BIGINT NOT NULL DEFAULT 0,
	last_used BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX api_keys_tenant ON api_keys (tenant, id);
