-- roles.sql: run once per cluster as a superuser (psql -f), before `music-admin migrate`, and again
-- after an upgrade (it is idempotent). music_owner owns the schema and runs migrations and
-- music-admin; music_api is the workers' login: it reads through music_api_reader (SELECT only,
-- 002_api_role.sql) and makes the routes' few writes through music_api_writer (007_playback.sql).
-- On a server, give both login roles passwords (\password) or use peer authentication.
SELECT 'CREATE ROLE music_owner LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'music_owner') \gexec
SELECT 'CREATE ROLE music_api_reader NOLOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'music_api_reader') \gexec
SELECT 'CREATE ROLE music_api_writer NOLOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'music_api_writer') \gexec
SELECT 'CREATE ROLE music_api LOGIN IN ROLE music_api_reader'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'music_api') \gexec
SELECT 'GRANT music_api_writer TO music_api'
 WHERE NOT pg_has_role('music_api', 'music_api_writer', 'MEMBER') \gexec
SELECT 'CREATE DATABASE music OWNER music_owner ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'music') \gexec
