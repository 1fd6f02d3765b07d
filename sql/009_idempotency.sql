-- 009_idempotency: writes a client can retry without fear of doing them twice.
--   * Idempotency-Key (IETF httpapi draft, Stripe): the first answer to a POST, PATCH or DELETE
--     sent with the header is stored here in the same transaction as the write it answers, keyed
--     by the API key that sent it and the client's key. A repeat gets that answer again; the
--     same key on another request is refused. Rows live 24 h (music_idempotency_prune deletes a
--     few expired rows per new one, so the table never needs a long-locking sweep).
--   * A deleted collection leaves a tombstone (its id and owner), so a repeated DELETE by the
--     caller who deleted it answers the same 200 as the first, and anyone else the one 404.
--   * The foreign keys that had no index: deleting a collection or a track no longer scans
--     share_links or library_saves, and a cover's track no longer scans collections.

CREATE TABLE IF NOT EXISTS idempotency_keys (
  api_key_id   text COLLATE "C" NOT NULL,
  key          text COLLATE "C" NOT NULL CHECK (key ~ '^[\x20-\x7e]{1,255}$'),
  -- SHA-256 of the method, the path and the body, hex: what "the same request" means.
  fingerprint  text COLLATE "C" NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
  status       smallint NOT NULL CHECK (status BETWEEN 200 AND 499),
  -- The answer's body, sealed under a key derived from the pepper (AES-256-GCM, hex): a share
  -- link's answer carries its token, and the database holds nothing that opens a link.
  body         text NOT NULL CHECK (body ~ '^[0-9a-f]*$'),
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (api_key_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Stores one answer and deletes at most two rows older than 24 h: as many as are added, so the
-- table stays about one day of keys without a sweep. SKIP LOCKED: never waits on another writer.
CREATE OR REPLACE FUNCTION music_idempotency_store(p_api_key text, p_key text, p_fingerprint text, p_status integer,
                                                   p_body text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM idempotency_keys WHERE created_at < now() - interval '24 hours'
     ORDER BY created_at LIMIT 2 FOR UPDATE SKIP LOCKED));
  -- This key's own expired answer, if the prune has not reached it yet: the key is free again
  -- (the caller holds its advisory lock, so no one else stores it meanwhile).
  DELETE FROM idempotency_keys WHERE api_key_id = p_api_key AND key = p_key
     AND created_at < now() - interval '24 hours';
  INSERT INTO idempotency_keys (api_key_id, key, fingerprint, status, body)
  VALUES (p_api_key, p_key, p_fingerprint, p_status, p_body);
END
$$;
REVOKE EXECUTE ON FUNCTION music_idempotency_store(text, text, text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION music_idempotency_store(text, text, text, integer, text) TO music_api_writer;
GRANT SELECT ON idempotency_keys TO music_api_writer;

CREATE TABLE IF NOT EXISTS deleted_collections (
  id         text COLLATE "C" PRIMARY KEY,
  org_id     text COLLATE "C" NOT NULL,
  user_id    text COLLATE "C" NOT NULL,
  deleted_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON deleted_collections TO music_api_writer;
-- Written by a trigger (as the schema owner), so every delete leaves one, music-admin's too, and
-- the API role needs no write on the table.
CREATE OR REPLACE FUNCTION music_collection_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO deleted_collections (id, org_id, user_id) VALUES (OLD.id, OLD.org_id, OLD.user_id)
  ON CONFLICT (id) DO NOTHING;
  RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS collections_tombstone ON collections;
CREATE TRIGGER collections_tombstone AFTER DELETE ON collections FOR EACH ROW EXECUTE FUNCTION music_collection_deleted();

CREATE INDEX IF NOT EXISTS share_links_collection_idx ON share_links (collection_id, org_id) WHERE collection_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS share_links_track_idx ON share_links (track_id, org_id) WHERE track_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS library_saves_share_link_idx ON library_saves (share_link_id) WHERE share_link_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS collections_cover_track_idx ON collections (cover_track_id) WHERE cover_track_id IS NOT NULL;
