-- 001_schema: organizations, users, keys, tracks, saves and collections.
-- Every id column uses COLLATE "C": ids compare byte-wise, which the listing's tie-break relies on.
-- Composite foreign keys keep each row inside its organization: a save or a collection entry
-- can only point at a track of the same org, and a collection at its own org.

CREATE TABLE IF NOT EXISTS organizations (
  id         text COLLATE "C" PRIMARY KEY CHECK (id ~ '^org_[A-Za-z0-9_-]{1,64}$'),
  name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users (
  id         text COLLATE "C" PRIMARY KEY CHECK (id ~ '^usr_[A-Za-z0-9_-]{1,64}$'),
  email      text NOT NULL CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$' AND length(email) <= 320),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON users (lower(email));

-- Capabilities are a small set of words checked on every request; an array keeps it one row.
CREATE TABLE IF NOT EXISTS memberships (
  user_id      text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  org_id       text COLLATE "C" NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  capabilities text[] NOT NULL DEFAULT '{}',
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, org_id)
);
CREATE INDEX IF NOT EXISTS memberships_org_idx ON memberships (org_id);

-- The key's id (mk_…) is stored in clear for lookup and logs; the secret only as HMAC-SHA-256
-- under a pepper that lives on the API hosts, never in the database.
CREATE TABLE IF NOT EXISTS api_keys (
  id          text COLLATE "C" PRIMARY KEY CHECK (id ~ '^mk_[a-z0-9]{16}$'),
  user_id     text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  secret_hash text COLLATE "C" NOT NULL CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  revoked_at  timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_user_idx ON api_keys (user_id);

CREATE TABLE IF NOT EXISTS tracks (
  id                        text COLLATE "C" PRIMARY KEY CHECK (id ~ '^mtrack_[A-Za-z0-9_-]{1,64}$'),
  org_id                    text COLLATE "C" NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  title                     text,
  engine                    text COLLATE "C" NOT NULL CHECK (octet_length(engine) BETWEEN 1 AND 64),
  mode                      text COLLATE "C" NOT NULL CHECK (octet_length(mode) BETWEEN 1 AND 64),
  measured_duration_seconds double precision
                            CHECK (measured_duration_seconds >= 0 AND measured_duration_seconds < 'Infinity'),
  instrumental              boolean NOT NULL DEFAULT false,
  licence_class             text COLLATE "C" NOT NULL DEFAULT 'unclear' CHECK (licence_class IN
                              ('commercial_cleared', 'commercial_enterprise', 'personal_only', 'unclear')),
  created_at                timestamptz NOT NULL DEFAULT now(),
  -- Targets of the composite foreign keys below.
  UNIQUE (id, org_id),
  UNIQUE (id, org_id, mode, engine)
);
CREATE INDEX IF NOT EXISTS tracks_org_idx ON tracks (org_id, created_at DESC);

-- One row per user and track. mode and engine are copied from the track so that each filtered
-- listing is a range scan of one index; the composite foreign key (ON UPDATE CASCADE) makes the
-- copy impossible to get wrong or stale.
CREATE TABLE IF NOT EXISTS library_saves (
  user_id  text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  track_id text COLLATE "C" NOT NULL,
  org_id   text COLLATE "C" NOT NULL,
  mode     text COLLATE "C" NOT NULL,
  engine   text COLLATE "C" NOT NULL,
  saved_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, track_id),
  FOREIGN KEY (track_id, org_id, mode, engine) REFERENCES tracks (id, org_id, mode, engine)
    ON UPDATE CASCADE ON DELETE CASCADE
);
-- The listing's order is (saved_at DESC, track_id DESC); each index serves one filter.
CREATE INDEX IF NOT EXISTS library_saves_page_idx
  ON library_saves (user_id, org_id, saved_at DESC, track_id DESC);
CREATE INDEX IF NOT EXISTS library_saves_mode_page_idx
  ON library_saves (user_id, org_id, mode, saved_at DESC, track_id DESC);
CREATE INDEX IF NOT EXISTS library_saves_engine_page_idx
  ON library_saves (user_id, org_id, engine, saved_at DESC, track_id DESC);
CREATE INDEX IF NOT EXISTS library_saves_track_idx ON library_saves (track_id);

CREATE TABLE IF NOT EXISTS collections (
  id         text COLLATE "C" PRIMARY KEY CHECK (id ~ '^mcoll_[A-Za-z0-9_-]{1,64}$'),
  org_id     text COLLATE "C" NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (id, org_id)
);
CREATE INDEX IF NOT EXISTS collections_owner_idx ON collections (user_id, org_id);

CREATE TABLE IF NOT EXISTS collection_tracks (
  collection_id text COLLATE "C" NOT NULL,
  track_id      text COLLATE "C" NOT NULL,
  org_id        text COLLATE "C" NOT NULL,
  added_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (collection_id, track_id),
  FOREIGN KEY (collection_id, org_id) REFERENCES collections (id, org_id) ON DELETE CASCADE,
  FOREIGN KEY (track_id, org_id) REFERENCES tracks (id, org_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS collection_tracks_track_idx ON collection_tracks (track_id);
