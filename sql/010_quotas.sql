-- 010_quotas: per-user quotas on collections and share links (the configuration's
-- max_collections_per_user and max_share_links_per_user), so one key cannot create millions.
--   * A create asks music_quota_room first, in its own statement (statements.hpp: kCreateCollection,
--     kCreateShare): the function takes a per-user advisory lock, held until the create commits,
--     and only then counts. Two creates at once by one user never both see room for one: the
--     second waits for the first's commit, and its count, a statement of its own inside a VOLATILE
--     function, takes a fresh snapshot that sees it (a single SQL statement would keep the snapshot
--     it started with, from before the wait).
--   * The lock is transaction-scoped: inside an Idempotency-Key transaction it is held until the
--     stored answer commits with the row. Its keys (class 0x4d415155, "MAQU") never meet the
--     Idempotency-Key locks (class 0x4d41494b), which are only ever tried, never waited for.
--   * Share links count only while live: not revoked, not expired. Revoking one (or its expiry)
--     frees a slot; deleting a collection frees one.
--   * The create's own new id is not counted: a worker's retry of a create whose first attempt did
--     commit (a session broken mid-commit, same id) is answered that row, never refused.
-- Runs with the caller's rights (it only reads what the API role already reads); the API role
-- gets EXECUTE on it and nothing else.

CREATE OR REPLACE FUNCTION music_quota_room(p_kind text, p_user text, p_new_id text, p_limit integer)
RETURNS boolean LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
DECLARE
  used bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(1296126293, hashtext(p_kind || ' ' || p_user));
  IF p_kind = 'collections' THEN
    SELECT count(*) INTO used FROM collections WHERE user_id = p_user AND id <> p_new_id;
  ELSIF p_kind = 'share_links' THEN
    SELECT count(*) INTO used FROM share_links
     WHERE creator_user_id = p_user AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
       AND id <> p_new_id;
  ELSE
    RAISE EXCEPTION 'music_quota_room: unknown quota %', p_kind;
  END IF;
  RETURN used < p_limit;
END
$$;
REVOKE EXECUTE ON FUNCTION music_quota_room(text, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION music_quota_room(text, text, text, integer) TO music_api_writer;

-- The live-link count walks only the creator's unrevoked links (collections_owner_page_idx already
-- leads with user_id for the collection count).
CREATE INDEX IF NOT EXISTS share_links_live_creator_idx ON share_links (creator_user_id, expires_at)
  WHERE revoked_at IS NULL;
