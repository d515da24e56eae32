"""Webhook delivery figures (driven by bench/webhooks.sh, which builds the release binary and
makes the database). Loopback only: the receivers are this process's own servers on 127.0.0.1,
and the service runs with EAP_WEBHOOK_ALLOW_LOOPBACK=true (loopback and nothing else).

(a) Latency from commit: referrals submitted at RATE/s for SECONDS s to a provider with one
    endpoint; for each, the time from the submission's 201 (the commit is before it) to the
    receiver getting its `referral.offered`. p50/p99/max, and how many arrived.
(b) ENDPOINTS endpoints (PROVIDERS providers × the per-provider limit of 5) of which DOWN do not
    work: half refuse connections (a closed port), half accept and never answer (the service's
    10 s timeout). EVENTS referrals are committed with delivery off, then the service restarts
    with delivery on: deliveries/s to the healthy endpoints while it drains the outbox, and its
    resident memory (start, peak while draining).

Every phase is bounded in time; nothing is sent off the machine. Standard library only.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import uuid

BIN = os.environ["BIN"]
DB_URL = os.environ["EAP_DATABASE_URL"]
PORT = int(os.environ.get("PORT", "18720"))
RATE = int(os.environ.get("RATE", "100"))
SECONDS = int(os.environ.get("SECONDS_A", "40"))
PROVIDERS = int(os.environ.get("PROVIDERS", "200"))
PER_PROVIDER = 5  # MAX_ENDPOINTS_PER_PROVIDER
DOWN = int(os.environ.get("DOWN", "100"))
EVENTS = int(os.environ.get("EVENTS", "2000"))
DRAIN_LIMIT = int(os.environ.get("DRAIN_LIMIT", "300"))
WORK = os.environ["WORK"]
BASE = f"http://127.0.0.1:{PORT}"

BODY = {
    "service_type": "counselling",
    "urgency": "routine",
    "modality": "video",
    "language": "en",
    "region": "GB-ENG",
    "employee_ref": "E-1",
    "contact": {
        "preferred_name": "Sam",
        "phone": "+447700900123",
        "email": "sam@example.org",
        "best_time_to_contact": "evenings",
        "voicemail_consent": True,
    },
    "note": "bench",
}


# --- receivers -------------------------------------------------------------------------------

class Healthy:
    """Answers 204 to every POST; keeps, per path, the arrival time of each referral id."""

    def __init__(self):
        self.lock = threading.Lock()
        self.arrivals: dict[str, float] = {}  # referral id -> first arrival (perf_counter)
        self.count = 0
        self.times: list[float] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                now = time.perf_counter()
                try:
                    rid = json.loads(body)["data"].get("referral_id")
                except (ValueError, KeyError):
                    rid = None
                with outer.lock:
                    outer.count += 1
                    outer.times.append(now)
                    if rid and rid not in outer.arrivals:
                        outer.arrivals[rid] = now
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            request_queue_size = 1024

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Silent:
    """Accepts connections and never answers: the service times out (10 s)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self.hold, daemon=True).start()

    def hold(self):
        while True:
            conn, _ = self.sock.accept()
            self.held.append(conn)


def closed_port() -> int:
    """A port nobody listens on: connections are refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- the service -----------------------------------------------------------------------------

RUNNING: list[Service] = []


class Service:
    def __init__(self, **env):
        self.env = {
            **os.environ,
            "EAP_LISTEN": f"127.0.0.1:{PORT}",
            "EAP_WORKERS": "2",
            "RUST_LOG": "warn",
            "EAP_WEBHOOK_ALLOW_LOOPBACK": "true",
            "EAP_RATE_LIMIT_HR_PORTAL": "0",
            "EAP_RATE_LIMIT_PROVIDER": "0",
            "EAP_RATE_LIMIT_ADMIN": "0",
            "EAP_RATE_LIMIT_TOKEN": "0",
            "EAP_RATE_LIMIT_TOKEN_CLIENT": "0",
            "EAP_RATE_LIMIT_TOKEN_ADDRESS": "0",
            **env,
        }
        log = open(os.path.join(WORK, "server.log"), "a")
        self.proc = subprocess.Popen([BIN], env=self.env, stdout=log, stderr=log)
        RUNNING.append(self)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("the service did not start; see server.log")

    def rss_kb(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self in RUNNING:
            RUNNING.remove(self)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_local = threading.local()


def request(method, path, token=None, body=None, headers=None, auth=None):
    """One request on this thread's kept-alive connection. A connection the server closed
    while idle (a restart, or its keep-alive timeout) is reopened and the request sent once
    more: setup requests are not timed, and submissions carry an Idempotency-Key."""
    try:
        return _request(method, path, token, body, headers, auth)
    except (OSError, http.client.HTTPException):
        return _request(method, path, token, body, headers, auth)


def _request(method, path, token, body, headers, auth):
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    h = dict(headers or {})
    data = None
    if token:
        h["Authorization"] = f"Bearer {token}"
    if auth:
        h["Authorization"] = auth
    if body is not None:
        if isinstance(body, str):
            data = body
            h["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body)
            h["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        raw = resp.read()
    except (OSError, http.client.HTTPException):
        _local.conn = None
        conn.close()
        raise
    return resp.status, (json.loads(raw) if raw and raw[:1] in b"{[" else None)


def ok(status_body, expected=(200, 201)):
    status, body = status_body
    if status not in expected:
        raise SystemExit(f"unexpected {status}: {body}")
    return body


def token(client_id, secret):
    import base64

    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    body = ok(request("POST", "/oauth/token", body="grant_type=client_credentials",
                      auth=f"Basic {basic}"))
    return body["access_token"]


def client_token(admin, spec):
    c = ok(request("POST", "/v1/admin/clients", admin, spec))
    return token(c["client_id"], c["client_secret"])


PROVIDER = {"services": ["counselling"], "languages": ["en"], "regions": ["GB"],
            "modalities": ["video"]}


def employer_with(admin, name, providers):
    """An employer contracted with `providers` (all priority 1), and its portal's token."""
    employer = ok(request("POST", "/v1/admin/employers", admin, {"name": name}))["id"]
    for p in providers:
        ok(request("POST", "/v1/admin/contracts", admin,
                   {"employer_id": employer, "provider_id": p, "priority": 1}))
    return client_token(admin, {"name": f"{name} portal", "role": "hr_portal",
                                "employer_id": employer})


def submit(portal) -> str:
    body = ok(request("POST", "/v1/referrals", portal, BODY,
                      {"Idempotency-Key": str(uuid.uuid4())}), (201,))
    return body["id"]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


# --- phases ----------------------------------------------------------------------------------

def phase_latency(admin, healthy):
    provider = ok(request("POST", "/v1/admin/providers", admin,
                          {"name": "Latency provider", **PROVIDER, "capacity": 100000}))["id"]
    ptoken = client_token(admin, {"name": "latency feed", "role": "provider",
                                  "provider_id": provider})
    ok(request("POST", "/v1/provider/webhooks", ptoken,
               {"url": f"http://127.0.0.1:{healthy.port}/latency"}))
    portal = employer_with(admin, "Latency employer", [provider])
    committed: dict[str, float] = {}
    lock = threading.Lock()
    errors = []
    total = RATE * SECONDS
    threads = 4
    start = time.perf_counter()

    def paced(k):
        # Submission i is due at start + i/RATE; thread k sends every `threads`-th one.
        try:
            for i in range(k, total, threads):
                delay = start + i / RATE - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                rid = submit(portal)
                t = time.perf_counter()
                with lock:
                    committed[rid] = t
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=paced, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    sent_for = time.perf_counter() - start
    if errors:
        raise SystemExit(f"submissions failed: {errors[0]!r}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with healthy.lock:
            if all(r in healthy.arrivals for r in committed):
                break
        time.sleep(0.2)
    with healthy.lock:
        lat = [(healthy.arrivals[r] - t) * 1000 for r, t in committed.items()
               if r in healthy.arrivals]
    missing = len(committed) - len(lat)
    return (f"{len(committed)} submissions in {sent_for:.1f} s "
            f"({len(committed) / sent_for:.1f}/s); commit→receiver latency "
            f"p50 {pct(lat, 50):.0f} ms, p99 {pct(lat, 99):.0f} ms, max {max(lat):.0f} ms; "
            f"{missing} not delivered within 120 s after the last submission")


def phase_fanout(admin, healthy):
    silent = Silent()
    refused = closed_port()
    providers = []
    down = 0
    for i in range(PROVIDERS):
        p = ok(request("POST", "/v1/admin/providers", admin,
                       {"name": f"Fan-out provider {i}", **PROVIDER,
                        "capacity": EVENTS // PROVIDERS}))["id"]
        t = client_token(admin, {"name": f"fan-out feed {i}", "role": "provider",
                                 "provider_id": p})
        for j in range(PER_PROVIDER):
            if down < DOWN and j == PER_PROVIDER - 1:
                port = refused if down % 2 == 0 else silent.port
                down += 1
            else:
                port = healthy.port
            ok(request("POST", "/v1/provider/webhooks", t,
                       {"url": f"http://127.0.0.1:{port}/p{i}/e{j}"}))
        providers.append(p)
    portal = employer_with(admin, "Fan-out employer", providers)
    return portal, down


def main():
    healthy = Healthy()
    admin_client = json.loads(subprocess.check_output(
        [BIN, "admin", "create-client", "--role", "admin", "--name", "bench"],
        env={**os.environ}, stderr=subprocess.DEVNULL))

    svc = Service()
    print(f"service RSS after start-up: {svc.rss_kb()} kB", flush=True)
    admin = token(admin_client["client_id"], admin_client["client_secret"])
    print(f"== (a) latency from commit at {RATE} submissions/s for {SECONDS} s", flush=True)
    print("latency:", phase_latency(admin, healthy), flush=True)

    print(f"== (b) {PROVIDERS * PER_PROVIDER} endpoints, {DOWN} down: setting up", flush=True)
    portal, down = phase_fanout(admin, healthy)
    svc.stop()
    # Events committed with delivery off, so the drain below measures delivery alone.
    svc = Service(EAP_WEBHOOK_DELIVERY="off")
    admin = token(admin_client["client_id"], admin_client["client_secret"])
    t0 = time.perf_counter()
    for _ in range(EVENTS):
        submit(portal)
    print(f"{EVENTS} referrals committed in {time.perf_counter() - t0:.1f} s (delivery off)",
          flush=True)
    svc.stop()

    with healthy.lock:
        before = healthy.count
    expected = EVENTS * PER_PROVIDER - (EVENTS // PROVIDERS) * down
    svc = Service()
    rss_start = svc.rss_kb()
    peak = rss_start
    t0 = time.perf_counter()
    deadline = t0 + DRAIN_LIMIT
    while time.perf_counter() < deadline:
        peak = max(peak, svc.rss_kb())
        with healthy.lock:
            got = healthy.count - before
        if got >= expected:
            break
        time.sleep(0.2)
    with healthy.lock:
        times = healthy.times[before:]
    got = len(times)
    span = (times[-1] - t0) if times else float("nan")
    rss_end = svc.rss_kb()
    svc.stop()
    print(f"fan-out: {got} of {expected} deliveries to the {PROVIDERS * PER_PROVIDER - down} "
          f"healthy endpoints in {span:.1f} s after the restart "
          f"({got / span:.1f} deliveries/s); {down} endpoints down "
          f"({(down + 1) // 2} refusing, {down // 2} silent); "
          f"RSS {rss_start} kB at start, peak {peak} kB, {rss_end} kB at the end"
          + ("" if got >= expected else f" (stopped at the {DRAIN_LIMIT} s limit)"),
          flush=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        # A failed phase leaves no server behind.
        for svc in list(RUNNING):
            svc.stop()
