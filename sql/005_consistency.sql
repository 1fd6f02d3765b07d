-- 005_consistency: three fixes to the copies the listing reads instead of joining.
--
-- 1. The collection entries' copy of the owner's saved_at (004) raced under READ COMMITTED: an
--    entry added while the owner saved (or unsaved) the track in another transaction read the
--    save before it committed, and the save's trigger could not see the uncommitted entry, so
--    the copy stayed NULL (or stale). Both sides now take one transaction-scoped advisory lock
--    per owner before they read the other side: whoever comes second waits for the first to
--    commit and then sees it (each statement in a plpgsql function takes a fresh snapshot).
--    Per owner rather than per (owner, track) so a bulk import of N saves takes one lock per
--    user, not per row; the locks are taken in user order, so two bulk statements cannot deadlock.
-- 2. Listing with both mode and engine had no index of its own: it walked the mode index and
--    filtered engine from the heap. Now each filter combination is an index-only walk.

CREATE OR REPLACE FUNCTION music_lock_collection_owner(owner text) RETURNS void
LANGUAGE sql AS $$
  -- 4004: this lock's class, so no other advisory lock user collides with it.
  SELECT pg_advisory_xact_lock(4004, hashtext(owner));
$$;

CREATE OR REPLACE FUNCTION music_collection_entry_saved_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM music_lock_collection_owner(c.user_id) FROM collections c WHERE c.id = NEW.collection_id;
  NEW.saved_at := NULL;
  SELECT s.saved_at INTO NEW.saved_at
    FROM collections c JOIN library_saves s ON s.user_id = c.user_id AND s.track_id = NEW.track_id
   WHERE c.id = NEW.collection_id;
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION music_saves_to_collections() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM music_lock_collection_owner(o.user_id) FROM (SELECT DISTINCT user_id FROM old_saves ORDER BY 1) o;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    PERFORM music_lock_collection_owner(n.user_id) FROM (SELECT DISTINCT user_id FROM new_saves ORDER BY 1) n;
  END IF;
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

CREATE INDEX IF NOT EXISTS library_saves_mode_engine_page_idx
  ON library_saves (user_id, org_id, mode, engine, saved_at DESC, track_id DESC);

-- 3. The auth notifications (003) fired on any UPDATE; only the columns the workers' caches hold
--    matter (and deletes), so unrelated updates no longer flush every worker's cache.
DROP TRIGGER IF EXISTS api_keys_notify_auth ON api_keys;
CREATE TRIGGER api_keys_notify_auth AFTER UPDATE OF id, user_id, secret_hash, expires_at, revoked_at OR DELETE
  ON api_keys FOR EACH STATEMENT EXECUTE FUNCTION music_api_notify_auth_change();
DROP TRIGGER IF EXISTS memberships_notify_auth ON memberships;
CREATE TRIGGER memberships_notify_auth AFTER UPDATE OF user_id, org_id, capabilities OR DELETE
  ON memberships FOR EACH STATEMENT EXECUTE FUNCTION music_api_notify_auth_change();
