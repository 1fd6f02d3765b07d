-- 004_collection_saved_at: a collection page is "the owner's saves that are in the collection,
-- newest save first". Each collection entry carries the owner's saved_at for its track (NULL while
-- the owner has not saved it), so that page is a range scan of one index instead of a join of all
-- of the owner's saves. Triggers keep the copy exact on every save, unsave and collection add.
ALTER TABLE collection_tracks ADD COLUMN IF NOT EXISTS saved_at timestamptz;

UPDATE collection_tracks ct SET saved_at = s.saved_at
  FROM collections c, library_saves s
 WHERE c.id = ct.collection_id AND s.user_id = c.user_id AND s.track_id = ct.track_id
   AND ct.saved_at IS DISTINCT FROM s.saved_at;

CREATE INDEX IF NOT EXISTS collection_tracks_page_idx
  ON collection_tracks (collection_id, saved_at DESC, track_id DESC) WHERE saved_at IS NOT NULL;

-- A new collection entry starts with the owner's saved_at, if any.
CREATE OR REPLACE FUNCTION music_collection_entry_saved_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  SELECT s.saved_at INTO NEW.saved_at
    FROM collections c JOIN library_saves s ON s.user_id = c.user_id AND s.track_id = NEW.track_id
   WHERE c.id = NEW.collection_id;
  RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS collection_tracks_saved_at ON collection_tracks;
CREATE TRIGGER collection_tracks_saved_at BEFORE INSERT OR UPDATE OF collection_id, track_id
  ON collection_tracks FOR EACH ROW EXECUTE FUNCTION music_collection_entry_saved_at();

-- Saves, changed saved_at and unsaves flow into the owner's collections (statement-level with
-- transition tables, so a bulk insert of a million saves is one join, not a million lookups).
CREATE OR REPLACE FUNCTION music_saves_to_collections() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE collection_tracks ct SET saved_at = NULL
      FROM old_saves o JOIN collections c ON c.user_id = o.user_id
     WHERE ct.collection_id = c.id AND ct.track_id = o.track_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE collection_tracks ct SET saved_at = n.saved_at
      FROM new_saves n JOIN collections c ON c.user_id = n.user_id
     WHERE ct.collection_id = c.id AND ct.track_id = n.track_id;
  END IF;
  RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS library_saves_insert_to_collections ON library_saves;
CREATE TRIGGER library_saves_insert_to_collections AFTER INSERT ON library_saves
  REFERENCING NEW TABLE AS new_saves FOR EACH STATEMENT EXECUTE FUNCTION music_saves_to_collections();
DROP TRIGGER IF EXISTS library_saves_update_to_collections ON library_saves;
CREATE TRIGGER library_saves_update_to_collections AFTER UPDATE ON library_saves
  REFERENCING OLD TABLE AS old_saves NEW TABLE AS new_saves
  FOR EACH STATEMENT EXECUTE FUNCTION music_saves_to_collections();
DROP TRIGGER IF EXISTS library_saves_delete_to_collections ON library_saves;
CREATE TRIGGER library_saves_delete_to_collections AFTER DELETE ON library_saves
  REFERENCING OLD TABLE AS old_saves FOR EACH STATEMENT EXECUTE FUNCTION music_saves_to_collections();

-- A collection's owner is fixed: the copied saved_at values belong to that owner.
CREATE OR REPLACE FUNCTION music_collection_owner_fixed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the owner of collection % cannot change', OLD.id;
END
$$;
DROP TRIGGER IF EXISTS collections_owner_fixed ON collections;
CREATE TRIGGER collections_owner_fixed BEFORE UPDATE OF user_id ON collections
  FOR EACH ROW WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id) EXECUTE FUNCTION music_collection_owner_fixed();
