-- 002_api_role: the API reads through the group role music_api_reader, which may only SELECT
-- what the listing reads. Grant it to the login role the workers use:
--   GRANT music_api_reader TO music_api;
-- Creating the role needs CREATEROLE; a DBA may create it beforehand instead.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'music_api_reader') THEN
    CREATE ROLE music_api_reader NOLOGIN;
  END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO music_api_reader;
GRANT SELECT ON api_keys, memberships, library_saves, tracks, collections, collection_tracks TO music_api_reader;
