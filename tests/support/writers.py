"""Writers through nginx while a fault runs (issue 15: the cluster tier, faults_database), and the
read-back that judges them.

One thread and one key per kind of write, each paced and bounded, each a client that follows the
API's contract: after a failure it sends the write once more, at once after a `Retry-After` (the
same Idempotency-Key when it had one), and after `WRITE_OUTCOME_UNKNOWN` (a create without a key
that may have been made) only when reading the list back does not find it.

Kinds: collection creates with an Idempotency-Key and without one, saves of distinct tracks,
entries added to one collection (and the collection reordered every fourth add), and deletes of
collections made beforehand. `judge()` reads everything back through the API and counts, per
kind: sent, acknowledged, failed, lost (acknowledged but absent), doubled (present twice), the
answers that were not 2xx or a JSON 409/503, and the longest stretch of failed writes.
"""

import json
import threading
import time

import musicapi

KINDS = ("create_keyed", "create_plain", "save", "add_entry", "delete")
# How long a commit the API could not confirm may take to settle on the test cluster: Patroni lets
# a frozen or cut synchronous replica go after wal_sender_timeout (5 s) and a loop (2 s).
SETTLE_SECONDS = 15


class Attempt:
    __slots__ = ("method", "t0", "t1", "status", "body", "headers", "error")

    def __init__(self, method, t0, t1, response=None, error=None):
        self.method, self.t0, self.t1, self.error = method, t0, t1, error
        self.status = response.status if response is not None else None
        self.body = response.body if response is not None else b""
        self.headers = response.headers if response is not None else None

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300

    def code(self):
        try:
            return json.loads(self.body)["error"]["code"]
        except Exception:  # noqa: BLE001 - not the envelope
            return None


class Writers:
    def __init__(self, world, org, tracks=16, doomed=12, interval=0.25, limit=400):
        self.org, self.interval, self.limit = org, interval, limit
        self.user = world.user()
        world.member(org, self.user)
        self.keys = {kind: world.key(self.user) for kind in KINDS}
        self.tracks = [world.track(org, creator=self.user) for _ in range(tracks)]
        self.doomed = [world.collection(org, self.user) for _ in range(doomed)]
        self.entry_coll = world.collection(org, self.user)
        self.records = {kind: [] for kind in KINDS}   # (what, [attempts])
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._n = 0

    # ----------------------------------------------------------------- sending
    def _send(self, kind, method, path, body=None, idem=None):
        h = dict(musicapi.key_headers(self.keys[kind]))
        if body is not None:
            h["Content-Type"] = "application/json"
        if idem is not None:
            h["Idempotency-Key"] = idem
        t0 = time.monotonic()
        try:
            r = musicapi.request(method, path, h, body=None if body is None else json.dumps(body).encode(),
                                 timeout=30, retry_rate_limited=True)
            return Attempt(method, t0, time.monotonic(), response=r)
        except Exception as e:  # noqa: BLE001 - no answer is a failure like any other
            return Attempt(method, t0, time.monotonic(), error=repr(e))

    def _collections_named(self, kind, name):
        """How many of the caller's collections carry `name` (newest 100), or None unknown."""
        a = self._send(kind, "GET", "/v1/music/%s/collections?limit=100" % self.org)
        if not a.ok:
            return None, a
        return [c["name"] for c in json.loads(a.body)["items"]].count(name), a

    def _write(self, kind, method, path, body=None, idem=None, name=None):
        attempts = [self._send(kind, method, path, body, idem)]
        first = attempts[0]
        if not first.ok and not self._stop.is_set():
            if first.status == 503 and first.code() == "WRITE_OUTCOME_UNKNOWN":
                # It settles once the database finished the commit it may have begun (a frozen or
                # cut synchronous replica holds one until Patroni lets the replica go): read back
                # until then, and send it again only if it never shows.
                deadline = time.monotonic() + SETTLE_SECONDS
                while True:
                    found, read = self._collections_named(kind, name)
                    if found:
                        attempts.append(read)  # made after all: read back, not sent again
                        return attempts
                    if time.monotonic() > deadline:
                        break
                    time.sleep(1)
            else:
                retry_after = first.headers.get("Retry-After") if first.headers is not None else None
                self._stop.wait(min(float(retry_after or 1), 2.0))
            attempts.append(self._send(kind, method, path, body, idem))
        return attempts

    def _run(self, kind):
        coll_path = "/v1/music/%s/collections" % self.org
        added = []
        for i in range(self.limit):
            if self._stop.is_set():
                break
            started = time.monotonic()
            if kind in ("create_keyed", "create_plain"):
                what = musicapi.unique(kind[:8])
                idem = musicapi.unique("idem") if kind == "create_keyed" else None
                attempts = self._write(kind, "POST", coll_path, {"name": what}, idem, name=what)
            elif kind == "save":
                if i >= len(self.tracks):
                    break
                what = self.tracks[i]
                attempts = self._write(kind, "POST", "/v1/music/%s/tracks/%s/save" % (self.org, what))
            elif kind == "add_entry":
                if i >= len(self.tracks):
                    break
                what = self.tracks[i]
                attempts = self._write(kind, "POST", "%s/%s/tracks" % (coll_path, self.entry_coll),
                                       {"track_id": what})
                if attempts[-1].ok:
                    added.append(what)
                    if len(added) % 4 == 0:
                        order = list(reversed(added))
                        self._write(kind, "PATCH", "%s/%s/order" % (coll_path, self.entry_coll),
                                    {"ordered_track_ids": order})
            else:
                if i >= len(self.doomed):
                    break
                what = self.doomed[i]
                attempts = self._write(kind, "DELETE", "%s/%s" % (coll_path, what))
            with self._lock:
                self.records[kind].append((what, attempts))
            self._stop.wait(max(0.0, started + self.interval - time.monotonic()))

    def __enter__(self):
        for kind in KINDS:
            t = threading.Thread(target=self._run, args=(kind,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(90)

    # ----------------------------------------------------------------- judging
    def _get_all(self, path, limit):
        """Every item of a paged list through the API (retrying a failed page a few times)."""
        items, offset = [], 0
        while True:
            for _ in range(10):
                a = self._send("save", "GET", "%s%slimit=%d&offset=%d" % (path, "&" if "?" in path else "?",
                                                                        limit, offset))
                if a.ok:
                    break
                time.sleep(1)
            if not a.ok:
                raise AssertionError("read-back of %s failed: %s %r" % (path, a.status, a.body[:200]))
            page = json.loads(a.body)["items"]
            items += page
            if len(page) < limit:
                return items
            offset += limit

    def judge(self):
        self.stop()
        org = self.org
        names = {}
        for c in self._get_all("/v1/music/%s/collections" % org, 100):
            names[c["name"]] = names.get(c["name"], 0) + 1
        coll_ids = {c["id"] for c in self._get_all("/v1/music/%s/collections" % org, 100)}
        saved = {t["id"] for t in self._get_all("/v1/music/%s/tracks" % org, 100)}
        entries = self._get_all("/v1/music/%s/collections/%s/tracks" % (org, self.entry_coll), 500)
        entry_ids = [e["track_id"] for e in entries]
        positions = [e["position"] for e in entries]
        out = {"kinds": {}, "bad_answers": [], "failed_at": []}
        for kind, rows in self.records.items():
            acked = failed = lost = doubled = 0
            for what, attempts in rows:
                for a in attempts:
                    if not a.ok:
                        out["failed_at"].append(a.t0)
                        if a.error or a.status not in (409, 503) or a.code() is None:
                            out["bad_answers"].append((kind, a.status, a.error or a.body[:160]))
                            continue
                        # Retry-After exactly where sending it again is safe; "outcome unknown"
                        # only for a create sent without a key.
                        unknown = a.code() == "WRITE_OUTCOME_UNKNOWN"
                        if ("Retry-After" in a.headers) == unknown or (unknown and kind != "create_plain"):
                            out["bad_answers"].append((kind, a.status, a.code(), "Retry-After" in a.headers))
                ok = attempts[-1].ok
                acked += ok
                failed += not ok
                if kind.startswith("create"):
                    present = names.get(what, 0)
                    lost += ok and present == 0
                    doubled += present > 1
                elif kind == "save":
                    lost += ok and what not in saved
                elif kind == "add_entry":
                    lost += ok and what not in entry_ids
                    doubled += entry_ids.count(what) > 1
                else:
                    lost += ok and what in coll_ids
            out["kinds"][kind] = dict(sent=len(rows), acked=acked, failed=failed, lost=lost, doubled=doubled)
        out["positions_dense"] = positions == list(range(len(positions)))
        times = sorted(out["failed_at"])
        longest, start, prev = 0.0, None, None
        for t in times:
            if prev is None or t - prev > 2.0:
                start = t
            longest = max(longest, t - start)
            prev = t
        out["longest_outage"] = longest
        return out


def summary(label, judged):
    parts = ["%s %d/%d/%d/%d/%d" % (k, v["sent"], v["acked"], v["failed"], v["lost"], v["doubled"])
             for k, v in judged["kinds"].items()]
    return ("%s writes (sent/acked/failed/lost/doubled): %s; longest write outage %.1f s; %d answers not "
            "2xx or a JSON 409/503" % (label, ", ".join(parts), judged["longest_outage"], len(judged["bad_answers"])))


def assert_judged(case, judged, max_outage, min_sent=1):
    """What every writers' fault asserts: each kind ran, no acknowledged write lost or made twice,
    every failure a JSON 409/503 (with Retry-After exactly where a retry is safe), positions
    dense, and the longest run of failed writes under `max_outage` seconds."""
    for kind, k in judged["kinds"].items():
        with case.subTest(kind=kind):
            case.assertGreaterEqual(k["sent"], min_sent, "%s: the stream hardly ran" % kind)
            case.assertEqual(k["lost"], 0, "%s: acknowledged writes lost" % kind)
            case.assertEqual(k["doubled"], 0, "%s: writes made twice" % kind)
    case.assertEqual(judged["bad_answers"][:5], [], "answers other than 2xx or a JSON 409/503")
    case.assertTrue(judged["positions_dense"], "collection positions are not 0..n-1")
    case.assertLess(judged["longest_outage"], max_outage)
