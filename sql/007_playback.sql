-- 007_playback: what the playable, editable library needs.
--   * Tracks get a creator (NULL: the organization's, visible to whoever saved it) and a soft
--     deletion time. Deleting a track removes it from every library in the same transaction, so
--     the listing (a walk of library_saves' index) never has to look at tracks to skip it.
--   * Audio files: one row per stored file (the master and each stem) with its type, size and
--     SHA-256; the bytes live under media_root/TRACK_ID/FILE_NAME and nginx serves them.
--   * Library entries get their public id (mlib_…) and how they came to be (own or shared).
--   * music_api_writer: exactly the writes the API's routes make (save, unsave, soft delete).

ALTER TABLE tracks ADD COLUMN IF NOT EXISTS creator_user_id text COLLATE "C" REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE tracks ADD COLUMN IF NOT EXISTS deleted_at timestamptz;
CREATE INDEX IF NOT EXISTS tracks_creator_idx ON tracks (creator_user_id) WHERE creator_user_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS track_media (
  track_id   text COLLATE "C" NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
  -- 'master', or the stem's name
  name       text COLLATE "C" NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
  is_master  boolean GENERATED ALWAYS AS (name = 'master') STORED,
  file_name  text COLLATE "C" NOT NULL CHECK (file_name ~ '^[a-z0-9][a-z0-9_-]{0,40}\.[a-z0-9]{1,5}$'),
  mime_type  text NOT NULL CHECK (mime_type ~ '^audio/[a-z0-9.+-]{1,40}$'),
  size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
  sha256     text COLLATE "C" NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  stored_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (track_id, name),
  UNIQUE (track_id, file_name)
);

ALTER TABLE library_saves ADD COLUMN IF NOT EXISTS id text COLLATE "C" NOT NULL
  DEFAULT ('mlib_' || replace(CAST(gen_random_uuid() AS text), '-', ''))
  CHECK (id ~ '^mlib_[A-Za-z0-9_-]{1,64}$');
CREATE UNIQUE INDEX IF NOT EXISTS library_saves_id_key ON library_saves (id);
ALTER TABLE library_saves ADD COLUMN IF NOT EXISTS source text COLLATE "C" NOT NULL DEFAULT 'own'
  CHECK (source IN ('own', 'shared'));

-- A deleted track leaves every library at once (its saves' own triggers then take it out of
-- the owners' collection pages). The track row itself stays, with its creator: audit history.
CREATE OR REPLACE FUNCTION music_track_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  DELETE FROM library_saves WHERE track_id = NEW.id;
  RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS tracks_deleted ON tracks;
CREATE TRIGGER tracks_deleted AFTER UPDATE OF deleted_at ON tracks FOR EACH ROW
  WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL) EXECUTE FUNCTION music_track_deleted();

-- The collection copies (004/005) are kept by triggers on library_saves, which now also fire for
-- the API's own saves: they run as the schema owner, so the API role needs no write on
-- collection_tracks.
ALTER FUNCTION music_saves_to_collections() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION music_collection_entry_saved_at() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION music_lock_collection_owner(text) SET search_path = public, pg_temp;

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'music_api_writer') THEN
    CREATE ROLE music_api_writer NOLOGIN;
  END IF;
END
$$;
-- The workers' login needs the role for every route that writes: an upgrade that skipped
-- roles.sql (which grants it) stops here with the fix, instead of answering every write with 500.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'music_api')
     AND NOT pg_has_role('music_api', 'music_api_writer', 'MEMBER') THEN
    RAISE EXCEPTION 'music_api is not a member of music_api_writer: run sql/roles.sql as a superuser first';
  END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO music_api_writer;
GRANT SELECT ON track_media TO music_api_reader;
-- Save (INSERT … ON CONFLICT DO NOTHING; id and saved_at come from their defaults), unsave, and
-- the soft delete (a row lock on the track first: SELECT … FOR UPDATE needs UPDATE on a column).
GRANT INSERT (user_id, track_id, org_id, mode, engine, source) ON library_saves TO music_api_writer;
GRANT DELETE ON library_saves TO music_api_writer;
GRANT UPDATE (deleted_at) ON tracks TO music_api_writer;
