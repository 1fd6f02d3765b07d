-- roles.sql: run once per cluster as a superuser (psql -f), before `music-admin migrate`.
-- music_owner owns the schema and runs migrations and music-admin; music_api is the workers'
-- login and reads through music_api_reader (SELECT only, granted by 002_api_role.sql).
-- On a server, give both login roles passwords (\password) or use peer authentication.
SELECT 'CREATE ROLE music_owner LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'music_owner') \gexec
SELECT 'CREATE ROLE music_api_reader NOLOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'music_api_reader') \gexec
SELECT 'CREATE ROLE music_api LOGIN IN ROLE music_api_reader'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'music_api') \gexec
SELECT 'CREATE DATABASE music OWNER music_owner ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'music') \gexec
