-- 003_auth_notify: workers cache successful key authorizations; any change to keys or memberships
-- notifies them (LISTEN music_api_auth) so the caches are dropped at once. The listing statement
-- re-checks the key and membership itself, so a late notification can never leak data.
CREATE OR REPLACE FUNCTION music_api_notify_auth_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('music_api_auth', TG_TABLE_NAME);
  RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS api_keys_notify_auth ON api_keys;
CREATE TRIGGER api_keys_notify_auth AFTER UPDATE OR DELETE ON api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION music_api_notify_auth_change();
DROP TRIGGER IF EXISTS memberships_notify_auth ON memberships;
CREATE TRIGGER memberships_notify_auth AFTER UPDATE OR DELETE ON memberships
  FOR EACH STATEMENT EXECUTE FUNCTION music_api_notify_auth_change();
