-- 008_collections_shares: collections served by the API (ordered, with a description and covers)
-- and share links.
--   * Collections gain a description, covers and updated_at; names may be 1-512 characters.
--   * Entries get a zero-based position, dense: every change to a collection's entries locks its
--     row first (FOR NO KEY UPDATE, in the functions below and in music-admin), and a deferred
--     unique constraint makes a duplicate position impossible even mid-reorder.
--   * A deleted track leaves every collection too (positions closed up), like every library.
--   * Share links: the raw token is shown once; only HMAC-SHA-256(pepper, token) is stored.
--     Track shares now; the table already holds collection shares (target_type 'collection').

ALTER TABLE collections ADD COLUMN IF NOT EXISTS description text;
ALTER TABLE collections ADD COLUMN IF NOT EXISTS cover_track_id text COLLATE "C";
ALTER TABLE collections ADD COLUMN IF NOT EXISTS cover_image_url text;
ALTER TABLE collections ADD COLUMN IF NOT EXISTS updated_at timestamptz;
UPDATE collections SET updated_at = created_at WHERE updated_at IS NULL;
ALTER TABLE collections ALTER COLUMN updated_at SET DEFAULT now();
ALTER TABLE collections ALTER COLUMN updated_at SET NOT NULL;
ALTER TABLE collections DROP CONSTRAINT IF EXISTS collections_name_check;
ALTER TABLE collections DROP CONSTRAINT IF EXISTS collections_name_length;
ALTER TABLE collections ADD CONSTRAINT collections_name_length CHECK (char_length(name) BETWEEN 1 AND 512);
ALTER TABLE collections DROP CONSTRAINT IF EXISTS collections_description_length;
ALTER TABLE collections ADD CONSTRAINT collections_description_length CHECK (char_length(description) <= 2000);
ALTER TABLE collections DROP CONSTRAINT IF EXISTS collections_cover_image_url_length;
ALTER TABLE collections ADD CONSTRAINT collections_cover_image_url_length CHECK (char_length(cover_image_url) <= 1024);
ALTER TABLE collections DROP CONSTRAINT IF EXISTS collections_cover_track_id_shape;
ALTER TABLE collections ADD CONSTRAINT collections_cover_track_id_shape
  CHECK (cover_track_id ~ '^mtrack_[A-Za-z0-9_-]{1,64}$');
CREATE INDEX IF NOT EXISTS collections_owner_page_idx ON collections (user_id, org_id, created_at DESC, id DESC);

ALTER TABLE collection_tracks ADD COLUMN IF NOT EXISTS position integer;
UPDATE collection_tracks ct SET position = o.position
  FROM (SELECT collection_id, track_id,
               CAST(row_number() OVER (PARTITION BY collection_id ORDER BY added_at, track_id) - 1 AS integer) AS position
          FROM collection_tracks) o
 WHERE ct.collection_id = o.collection_id AND ct.track_id = o.track_id AND ct.position IS NULL;
ALTER TABLE collection_tracks ALTER COLUMN position SET NOT NULL;
ALTER TABLE collection_tracks DROP CONSTRAINT IF EXISTS collection_tracks_position_nonnegative;
ALTER TABLE collection_tracks ADD CONSTRAINT collection_tracks_position_nonnegative CHECK (position >= 0);
ALTER TABLE collection_tracks DROP CONSTRAINT IF EXISTS collection_tracks_position_key;
ALTER TABLE collection_tracks ADD CONSTRAINT collection_tracks_position_key UNIQUE (collection_id, position)
  DEFERRABLE INITIALLY DEFERRED;

-- A deleted track leaves every library (007) and now every collection, the positions after it
-- moved up by one, in the same transaction as the delete.
CREATE OR REPLACE FUNCTION music_track_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  entry record;
  gone integer;
BEGIN
  DELETE FROM library_saves WHERE track_id = NEW.id;
  FOR entry IN SELECT ct.collection_id FROM collection_tracks ct
                 JOIN collections c ON c.id = ct.collection_id
                WHERE ct.track_id = NEW.id ORDER BY ct.collection_id FOR NO KEY UPDATE OF c LOOP
    -- The position is read only now, under the collection's lock, by a statement of its own (a
    -- fresh snapshot): an edit that held the lock before may have moved the entry.
    gone := NULL;
    DELETE FROM collection_tracks WHERE collection_id = entry.collection_id AND track_id = NEW.id
      RETURNING position INTO gone;
    IF gone IS NOT NULL THEN
      UPDATE collection_tracks SET position = position - 1
       WHERE collection_id = entry.collection_id AND position > gone;
    END IF;
  END LOOP;
  UPDATE collections SET cover_track_id = NULL WHERE cover_track_id = NEW.id;
  RETURN NULL;
END
$$;

CREATE TABLE IF NOT EXISTS share_links (
  id             text COLLATE "C" PRIMARY KEY CHECK (id ~ '^mslink_[A-Za-z0-9_-]{1,64}$'),
  token_hash     text COLLATE "C" NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  org_id         text COLLATE "C" NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  creator_user_id text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  target_type    text COLLATE "C" NOT NULL CHECK (target_type IN ('track', 'collection')),
  track_id       text COLLATE "C",
  collection_id  text COLLATE "C",
  visibility     text COLLATE "C" NOT NULL DEFAULT 'link_only' CHECK (visibility IN ('link_only', 'public')),
  expires_at     timestamptz,
  revoked_at     timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (track_id, org_id) REFERENCES tracks (id, org_id) ON DELETE CASCADE,
  FOREIGN KEY (collection_id, org_id) REFERENCES collections (id, org_id) ON DELETE CASCADE,
  CHECK ((target_type = 'track' AND track_id IS NOT NULL AND collection_id IS NULL)
      OR (target_type = 'collection' AND collection_id IS NOT NULL AND track_id IS NULL))
);
CREATE INDEX IF NOT EXISTS share_links_creator_idx ON share_links (creator_user_id);

ALTER TABLE library_saves ADD COLUMN IF NOT EXISTS share_link_id text COLLATE "C"
  REFERENCES share_links (id) ON DELETE SET NULL;

GRANT SELECT ON share_links TO music_api_reader;
-- Collections: create, edit, delete the caller's own (the statements check the owner).
GRANT INSERT (id, org_id, user_id, name, description, cover_track_id, cover_image_url) ON collections TO music_api_writer;
GRANT UPDATE (name, description, cover_track_id, cover_image_url, updated_at) ON collections TO music_api_writer;
GRANT DELETE ON collections TO music_api_writer;
-- Share links: create and revoke; saving a shared track records the link.
GRANT INSERT (id, token_hash, org_id, creator_user_id, target_type, track_id, visibility, expires_at)
  ON share_links TO music_api_writer;
GRANT UPDATE (revoked_at) ON share_links TO music_api_writer;
GRANT INSERT (share_link_id) ON library_saves TO music_api_writer;

-- The API's edits of a collection's entries: one call (one round trip) each, run as the schema
-- owner (SECURITY DEFINER), so the API role writes entries only through them: it cannot leave a
-- position duplicated or missing, even by hand. Each checks the owner, locks the collection row first and only then reads its entries:
-- in a plpgsql function every statement takes a new snapshot, so the reads after the lock see the
-- commits of whoever held it before (a single SQL statement would keep its older snapshot).
-- NULL: the collection is not this user's in this org.
CREATE OR REPLACE FUNCTION music_collection_lock(p_collection text, p_user text, p_org text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  -- NO KEY UPDATE: serializes the edits of one collection, without waiting for the key-share
  -- locks that foreign-key checks of its new entries hold.
  PERFORM 1 FROM collections WHERE id = p_collection AND user_id = p_user AND org_id = p_org FOR NO KEY UPDATE;
  RETURN FOUND;
END
$$;

-- 'added', 'present', 'no_track' (not a track the user may access in the org), or NULL.
CREATE OR REPLACE FUNCTION music_collection_add(p_collection text, p_user text, p_org text, p_track text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF NOT music_collection_lock(p_collection, p_user, p_org) THEN RETURN NULL; END IF;
  -- Already there: no track lock needed (a delete of the track holds it, then waits for ours).
  PERFORM 1 FROM collection_tracks WHERE collection_id = p_collection AND track_id = p_track;
  IF FOUND THEN RETURN 'present'; END IF;
  PERFORM 1 FROM tracks t WHERE t.id = p_track AND t.org_id = p_org AND t.deleted_at IS NULL
     AND (t.creator_user_id = p_user OR EXISTS (SELECT 1 FROM library_saves s WHERE s.user_id = p_user
                                                 AND s.track_id = t.id))
     FOR SHARE OF t;
  IF NOT FOUND THEN RETURN 'no_track'; END IF;
  INSERT INTO collection_tracks (collection_id, track_id, org_id, position)
  SELECT p_collection, p_track, p_org, count(*) FROM collection_tracks WHERE collection_id = p_collection;
  UPDATE collections SET updated_at = now() WHERE id = p_collection;
  RETURN 'added';
END
$$;

-- 'removed' or 'absent' (idempotent), or NULL. The entries after it move up by one.
CREATE OR REPLACE FUNCTION music_collection_remove(p_collection text, p_user text, p_org text, p_track text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  gone integer;
BEGIN
  IF NOT music_collection_lock(p_collection, p_user, p_org) THEN RETURN NULL; END IF;
  DELETE FROM collection_tracks WHERE collection_id = p_collection AND track_id = p_track RETURNING position INTO gone;
  IF gone IS NULL THEN RETURN 'absent'; END IF;
  UPDATE collection_tracks SET position = position - 1 WHERE collection_id = p_collection AND position > gone;
  UPDATE collections SET updated_at = now() WHERE id = p_collection;
  RETURN 'removed';
END
$$;

-- The listed tracks that are in the collection (a repeated id counts once, at its first index;
-- other ids are ignored) take positions 0..k-1 in the listed order; the others follow in their
-- present order. 'reordered', or NULL.
CREATE OR REPLACE FUNCTION music_collection_reorder(p_collection text, p_user text, p_org text, p_ids text[])
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF NOT music_collection_lock(p_collection, p_user, p_org) THEN RETURN NULL; END IF;
  UPDATE collection_tracks ct SET position = o.position
    FROM (SELECT e.track_id,
                 CAST(row_number() OVER (ORDER BY l.first_index NULLS LAST, e.position) - 1 AS integer) AS position
            FROM collection_tracks e
            LEFT JOIN (SELECT id, min(n) AS first_index FROM unnest(p_ids) WITH ORDINALITY AS u(id, n) GROUP BY id) l
              ON l.id = e.track_id
           WHERE e.collection_id = p_collection) o
   WHERE ct.collection_id = p_collection AND ct.track_id = o.track_id AND ct.position <> o.position;
  UPDATE collections SET updated_at = now() WHERE id = p_collection;
  RETURN 'reordered';
END
$$;

REVOKE EXECUTE ON FUNCTION music_collection_lock(text, text, text), music_collection_add(text, text, text, text),
  music_collection_remove(text, text, text, text), music_collection_reorder(text, text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION music_collection_lock(text, text, text), music_collection_add(text, text, text, text),
  music_collection_remove(text, text, text, text), music_collection_reorder(text, text, text, text[])
  TO music_api_writer;
