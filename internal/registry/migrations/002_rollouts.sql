-- Endpoint policies and rollout state, as opaque JSON owned by the router and
-- the rollout controller; the registry only keeps them and their history.
CREATE TABLE endpoints (
	name    TEXT PRIMARY KEY,
	policy  TEXT NOT NULL,
	updated BIGINT NOT NULL
);

CREATE TABLE rollouts (
	endpoint TEXT PRIMARY KEY,
	status   TEXT NOT NULL,
	updated  BIGINT NOT NULL
);

CREATE TABLE rollout_events (
	id       {{identity}},
	endpoint TEXT NOT NULL,
	event    TEXT NOT NULL,
	at       BIGINT NOT NULL
);

CREATE INDEX rollout_events_endpoint ON rollout_events (endpoint, id);
