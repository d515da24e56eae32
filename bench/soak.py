#!/usr/bin/env python3
"""The soak's load: a steady mix of the service's real work, measured per window.

Run by bench/soak.sh (which starts the server); standard library only. Every request's status
and latency is recorded per operation and per window; the server's resident memory is sampled
from /proc. Exits non-zero on any 5xx, any status an operation should not get, or a request
that got no answer.

  soak.py BASE PID SECONDS ADMIN_ID ADMIN_SECRET
"""

import base64
import http.client
import json
import sys
import threading
import time
import urllib.parse
import uuid

BASE, PID, SECONDS, ADMIN_ID, ADMIN_SECRET = sys.argv[1:6]
SECONDS = int(SECONDS)
HOST = urllib.parse.urlparse(BASE)
WINDOW = max(10, min(60, SECONDS // 6))  # seconds per reported window
SUBMISSIONS_PER_SECOND = float(__import__("os").environ.get("SOAK_RATE", "8"))
BODY = json.dumps({
    "service_type": "counselling", "urgency": "routine", "modality": "video", "language": "en",
    "region": "GB-ENG", "employee_ref": "SOAK-1",
    "contact": {"preferred_name": "Sam", "phone": "+447700900123", "email": "sam@example.org",
                "best_time_to_contact": "evenings", "voicemail_consent": True},
    "note": "soak",
})

lock = threading.Lock()
samples = []  # (window, op, status, seconds)
failures = []
stop = threading.Event()
started = time.monotonic()


class Conn:
    """One keep-alive connection, reopened when the server closes it."""

    def __init__(self):
        self.c = None

    def call(self, op, method, path, token=None, body=None, headers=None, expect=(200,)):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + (token() if callable(token) else token)
        if body is not None:
            h["Content-Type"] = "application/json"
        t0 = time.monotonic()
        for attempt in (0, 1):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection(HOST.hostname, HOST.port, timeout=90)
                self.c.request(method, path, body=body, headers=h)
                r = self.c.getresponse()
                data = r.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError) as e:
                self.c = None
                if attempt:
                    with lock:
                        failures.append(f"{op}: no answer: {e}")
                    return None, {}, b""
        took = time.monotonic() - t0
        with lock:
            samples.append((int((time.monotonic() - started) // WINDOW), op, r.status, took))
            if r.status >= 500 or r.status not in expect:
                failures.append(f"{op} {method} {path}: {r.status} {data[:200]!r}")
        return r.status, dict(r.getheaders()), data


def token_answer(client_id, secret):
    c = http.client.HTTPConnection(HOST.hostname, HOST.port, timeout=30)
    creds = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    c.request("POST", "/oauth/token", body="grant_type=client_credentials",
              headers={"Authorization": "Basic " + creds,
                       "Content-Type": "application/x-www-form-urlencoded"})
    return json.loads(c.getresponse().read())


def token(client_id, secret):
    return token_answer(client_id, secret)["access_token"]


class Renewing:
    """A client's token, fetched again once half its lifetime has passed, as a client does:
    a soak outlives a token (EAP_TOKEN_TTL_SECS), and every request after that would be 401."""

    def __init__(self, client_id, secret):
        self.client_id, self.secret = client_id, secret
        self.lock = threading.Lock()
        self.renew_at = 0.0
        self.value = None

    def __call__(self):
        with self.lock:
            if time.monotonic() >= self.renew_at:
                v = token_answer(self.client_id, self.secret)
                self.value = v["access_token"]
                self.renew_at = time.monotonic() + max(1, int(v.get("expires_in", 600)) // 2)
            return self.value


def setup():
    c = Conn()
    admin = token(ADMIN_ID, ADMIN_SECRET)

    def post(path, body):
        status, _, data = c.call("setup", "POST", path, admin, json.dumps(body), expect=(201,))
        return json.loads(data)

    employer = post("/v1/admin/employers", {"name": "Soak Employer"})["id"]
    provider = post("/v1/admin/providers", {
        "name": "Soak Provider", "services": ["counselling"], "languages": ["en"],
        "regions": ["GB"], "modalities": ["video"], "capacity": 100000})["id"]
    post("/v1/admin/contracts", {"employer_id": employer, "provider_id": provider, "priority": 1})

    def client(body):
        v = post("/v1/admin/clients", body)
        return Renewing(v["client_id"], v["client_secret"])

    return (client({"name": "soak portal", "role": "hr_portal", "employer_id": employer}),
            client({"name": "soak provider", "role": "provider", "provider_id": provider}),
            client({"name": "soak auditor", "role": "auditor"}))


PORTAL, PROVIDER, AUDITOR = setup()
status_tokens = []  # (id, status token) of recent submissions, for the portal's status reads


def steady(rate, step):
    """Calls step() `rate` times a second on a fixed schedule until the end."""
    interval, due = 1.0 / rate, time.monotonic()
    while not stop.is_set():
        step()
        due += interval
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)


def submitter():
    c = Conn()

    def step():
        status, _, data = c.call("submit", "POST", "/v1/referrals", PORTAL, BODY,
                                 {"Idempotency-Key": str(uuid.uuid4())}, expect=(201,))
        if status == 201:
            v = json.loads(data)
            with lock:
                status_tokens.append((v["id"], v["status_token"]))
                del status_tokens[:-200]
    steady(SUBMISSIONS_PER_SECOND, step)


def status_reader():
    c = Conn()

    def step():
        with lock:
            pick = status_tokens[-1] if status_tokens else None
        if pick:
            c.call("status", "GET", f"/v1/referrals/{pick[0]}", PORTAL,
                   headers={"Referral-Token": pick[1]})
    steady(SUBMISSIONS_PER_SECOND, step)


def provider():
    """Long-polls the feed; accepts each offer, reads its contact block and closes it."""
    feed, work = Conn(), Conn()
    cursor = None
    while not stop.is_set():
        path = "/v1/provider/events?wait=5" + (f"&after={cursor}" if cursor else "")
        status, _, data = feed.call("poll", "GET", path, PROVIDER)
        if status != 200:
            time.sleep(1)
            continue
        page = json.loads(data)
        cursor = page["next_cursor"]
        for e in page["events"]:
            if e["kind"] != "offered" or stop.is_set():
                continue
            rid = e["referral_id"]
            status, h, _ = work.call("view", "GET", f"/v1/provider/referrals/{rid}", PROVIDER)
            if status != 200:
                continue
            status, h, _ = work.call("accept", "POST", f"/v1/provider/referrals/{rid}/accept",
                                     PROVIDER, headers={"If-Match": h.get("etag", "")})
            if status != 200:
                continue
            work.call("contact", "GET", f"/v1/provider/referrals/{rid}/contact", PROVIDER)
            work.call("close", "POST", f"/v1/provider/referrals/{rid}/status", PROVIDER,
                      json.dumps({"status": "closed", "outcome": "referred_elsewhere"}),
                      {"If-Match": h.get("etag", "")})


def auditor():
    c = Conn()
    n = [0]

    def step():
        n[0] += 1
        c.call("audit-search", "GET", "/v1/audit/events?limit=50", AUDITOR)
        c.call("audit-checkpoints", "GET", "/v1/audit/checkpoints", AUDITOR)
        if n[0] % 60 == 0:
            c.call("audit-verify", "GET", "/v1/audit/verify", AUDITOR)
    steady(1.0, step)


def rss_kb():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


rss = []  # (window, kB)


def sampler():
    while not stop.is_set():
        rss.append((int((time.monotonic() - started) // WINDOW), rss_kb()))
        time.sleep(2)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else 0.0


threads = [threading.Thread(target=t, daemon=True)
           for t in (submitter, status_reader, provider, auditor, sampler)]
for t in threads:
    t.start()
time.sleep(SECONDS)
stop.set()
for t in threads:
    t.join(timeout=20)

windows = sorted({w for w, *_ in samples})
print(f"{'window':>8} {'requests':>9} {'req/s':>7} {'5xx':>4} {'p50 ms':>7} {'p99 ms':>7} "
      f"{'RSS kB':>8}")
p99s = []
for w in windows:
    lat = [s for (ww, op, st, s) in samples if ww == w and op != "poll"]
    n = sum(1 for s in samples if s[0] == w)
    five = sum(1 for s in samples if s[0] == w and s[2] >= 500)
    r = [k for (ww, k) in rss if ww == w]
    p99s.append(pct(lat, 0.99) * 1000)
    print(f"{w * WINDOW:>7}s {n:>9} {n / WINDOW:>7.1f} {five:>4} {pct(lat, 0.5) * 1000:>7.1f} "
          f"{p99s[-1]:>7.1f} {max(r) if r else 0:>8}")
ops = sorted({op for _, op, _, _ in samples})
print("\nper operation (whole run): count, p50 ms, p99 ms")
for op in ops:
    lat = [s for (_, o, _, s) in samples if o == op]
    print(f"  {op:<18} {len(lat):>7} {pct(lat, 0.5) * 1000:>8.1f} {pct(lat, 0.99) * 1000:>8.1f}")
# Memory after the first window (warm-up: pools, caches and allocator arenas fill) against the
# last window's.
# Only windows with a reading count: the last, partial window may have none, and a growth
# measured against nothing would pass whatever the memory did.
measured = sorted({w for (w, k) in rss if k > 0})
if len(measured) < 2:
    failures.append(f"memory: readings in {len(measured)} window(s), need two to compare")
warm = (measured[1] if len(measured) > 2 else measured[0]) if measured else None
first = [k for (w, k) in rss if k > 0 and w == warm]
last = [k for (w, k) in rss if k > 0 and measured and w == measured[-1]]
growth = (max(last) - max(first)) if first and last else 0
five = sum(1 for s in samples if s[2] >= 500)
print(f"\nrequests {len(samples)}, 5xx {five}, other failures {len(failures) - five}")
print(f"RSS after warm-up {max(first) if first else 0} kB, at the end {max(last) if last else 0} kB, "
      f"growth {growth} kB")
print(f"p99 per window (ms, polls excluded): min {min(p99s):.1f}, max {max(p99s):.1f}")
for f in failures[:20]:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
