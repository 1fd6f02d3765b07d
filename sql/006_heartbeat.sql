-- 006_heartbeat: on a cluster, reads may run on a replica. Each music-api host's listener commits
-- a heartbeat on the primary every second; a replica's readers then measure its lag by when it
-- last replayed a commit (pg_last_xact_replay_timestamp), and a replica further behind than
-- max_replica_lag is not read from. The API role gets no write privilege on any table: it may
-- only call this one function, which updates this one row.
CREATE TABLE IF NOT EXISTS music_heartbeat (
  id integer PRIMARY KEY CHECK (id = 1),
  beat_at timestamptz NOT NULL
);
INSERT INTO music_heartbeat (id, beat_at) VALUES (1, now()) ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION music_api_heartbeat() RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
  UPDATE music_heartbeat SET beat_at = now() WHERE id = 1;
$$;
REVOKE ALL ON FUNCTION music_api_heartbeat() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION music_api_heartbeat() TO music_api_reader;
GRANT SELECT ON music_heartbeat TO music_api_reader;
