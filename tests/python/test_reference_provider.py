"""The reference provider integration (examples/provider-python/provider_poller.py) against real
servers: it takes offers, keeps and deletes contact copies, resumes from its cursor, waits out
a real 429 from the service's rate limiter, renews its token; and its retry rule against a
scripted stub on 127.0.0.1 (503s, Retry-After forms, the cap, giving up).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import provider_poller as pp
from eap_referrals_client import AuthenticatedClient
from eap_referrals_client.api.provider import get_referral, poll_feed
from eap_referrals_client.api.referrals import cancel, erase
from eap_referrals_client.models import Feed, ProviderReferral, ReferralStatus, Status
from support import Creds, Server, authed, expect, make_tenancy, referral, submit_referral

POLLER = Path(pp.__file__)


def run_poller(server_url: str, creds: Creds, state: Path, *args: str) -> tuple[int, str]:
    """Runs the poller as its users do: a process, the secret in a file, loopback only."""
    secret = state.parent / f"{state.name}.secret"
    secret.write_text(creds.client_secret)
    secret.chmod(0o600)
    env = {
        **os.environ,
        "EAP_BASE_URL": server_url,
        "EAP_CLIENT_ID": creds.client_id,
        "EAP_CLIENT_SECRET_FILE": str(secret),
    }
    env.pop("EAP_CLIENT_SECRET", None)
    done = subprocess.run(
        [sys.executable, str(POLLER), "--state-dir", str(state), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


def provider_view(server: Server, creds: Creds, rid: str) -> ProviderReferral:
    with authed(server.base_url, creds) as prov:
        return expect(get_referral.sync_detailed(rid, client=prov), 200, ProviderReferral)


def test_takes_an_offer_keeps_the_contact_and_deletes_it_when_erased(server: Server, tmp_path):
    t = make_tenancy(server, "poller take")
    state = tmp_path / "state"
    body = referral(name="Morgan", phone="+447700900321")
    with authed(server.base_url, t.portal) as portal:
        submitted = submit_referral(portal, body)
    rid = submitted.id

    rc, out = run_poller(server.base_url, t.provider, state, "--once", "--wait", "10")
    assert rc == 0, out
    assert f"event offered {rid}" in out and f"accepted {rid}" in out
    assert provider_view(server, t.provider, rid).status == Status.ACCEPTED
    copy = state / "contacts" / f"{rid}.json"
    kept = json.loads(copy.read_text())
    assert kept["referral_id"] == rid
    assert kept["contact"]["preferred_name"] == "Morgan"
    assert kept["contact"]["phone"] == "+447700900321"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600, "only its owner reads a contact copy"
    assert (state / "cursor").read_text().strip()
    for personal in ("Morgan", "+447700900321", body.note):
        assert personal not in out, "the poller logs ids and statuses only"

    with authed(server.base_url, t.portal) as portal:
        expect(erase.sync_detailed(rid, client=portal, referral_token=submitted.status_token), 204)
    rc, out = run_poller(server.base_url, t.provider, state, "--once", "--wait", "10")
    assert rc == 0, out
    assert f"erased {rid}: local copy deleted" in out
    assert not copy.exists()
    assert not [p.name for p in state.rglob("*.tmp")], "no temporary file left behind"


def test_a_restart_resumes_from_the_cursor_without_reprocessing(server: Server, tmp_path):
    t = make_tenancy(server, "poller restart")
    state = tmp_path / "state"
    with authed(server.base_url, t.portal) as portal:
        first = submit_referral(portal, referral()).id
        rc, out = run_poller(server.base_url, t.provider, state, "--once", "--wait", "10")
        assert rc == 0 and f"accepted {first}" in out, out
        cursor = (state / "cursor").read_text()

        # A new process with the same state: it starts after what it handled.
        second = submit_referral(portal, referral("Robin", "+447700900654")).id
    rc, out = run_poller(server.base_url, t.provider, state, "--once", "--wait", "10")
    assert rc == 0, out
    assert f"event offered {first}" not in out, "the first offer is not handled twice"
    assert f"accepted {second}" in out
    assert (state / "cursor").read_text() != cursor

    # Without its cursor it replays the feed from the start, and handling is idempotent:
    # nothing is accepted or revealed again.
    (state / "cursor").unlink()
    rc, out = run_poller(server.base_url, t.provider, state, "--once", "--wait", "10")
    assert rc == 0, out
    assert f"event offered {first}" in out and f"event offered {second}" in out
    for rid in (first, second):
        assert f"INFO accepted {rid}" not in out and f"contact {rid}: kept" not in out
    assert {p.stem for p in (state / "contacts").iterdir()} == {first, second}


def test_a_stale_etag_is_re_read_and_a_withdrawn_offer_is_skipped(
    server: Server, tmp_path, monkeypatch, caplog
):
    """The races are the service's own answers: a 412 for an If-Match older than the referral,
    then, on reading again, the referral as it now is (taken, or cancelled by the portal
    between the poller's read and its accept)."""
    t = make_tenancy(server, "poller races")
    session = pp.Session(server.base_url, t.provider.client_id, t.provider.client_secret)
    poller = pp.Poller(session, pp.State(tmp_path / "state"), wait=10)
    real_read = get_referral.sync_detailed
    with authed(server.base_url, t.portal) as portal:
        stale = submit_referral(portal, referral())
        withdrawn = submit_referral(portal, referral("Kit", "+447700900987"))
        raced: set[str] = set()

        def read(rid, *, client):
            resp = real_read(rid, client=client)
            if rid in raced:
                return resp
            raced.add(rid)
            if rid == stale.id:
                # The poller sees the version before the current one, as if another worker
                # had moved the referral between its read and its accept.
                version = int(resp.headers["etag"].strip('"'))
                resp.headers["etag"] = f'"{version - 1}"'
            if rid == withdrawn.id:
                expect(
                    cancel.sync_detailed(rid, client=portal, referral_token=withdrawn.status_token),
                    200,
                    ReferralStatus,
                )
            return resp

        monkeypatch.setattr(get_referral, "sync_detailed", read)
        with caplog.at_level(logging.INFO, logger="provider-poller"):
            while poller.poll_once() == 0:
                pass
    session.close()
    monkeypatch.undo()

    assert raced == {stale.id, withdrawn.id}
    assert f"accept {stale.id}: changed since read (412), re-reading" in caplog.text
    assert f"accepted {stale.id}" in caplog.text
    assert provider_view(server, t.provider, stale.id).status == Status.ACCEPTED
    assert poller.state.holds(stale.id)
    assert f"accept {withdrawn.id}: changed since read (412), re-reading" in caplog.text
    assert f"offered {withdrawn.id}: now cancelled, skipped" in caplog.text
    assert not poller.state.holds(withdrawn.id)


def test_a_real_429_is_waited_out_and_the_offer_still_taken(tight_server: Server, tmp_path):
    """The tight server allows a provider 60 requests a minute: spend them, then the poller's
    first request meets the rate limiter's 429 and Retry-After."""
    t = make_tenancy(tight_server, "poller budget")
    with authed(tight_server.base_url, t.portal) as portal:
        rid = submit_referral(portal, referral()).id
    with authed(tight_server.base_url, t.provider) as prov:
        for _ in range(200):
            spent = poll_feed.sync_detailed(client=prov)
            if spent.status_code == 429:
                break
        assert spent.status_code == 429, "the budget ran out"
        assert int(spent.headers["retry-after"]) >= 1
    started = time.monotonic()
    rc, out = run_poller(tight_server.base_url, t.provider, tmp_path / "state", "--once")
    assert rc == 0, out
    assert "429 from the server; retrying in" in out
    assert f"accepted {rid}" in out and f"contact {rid}: kept" in out
    assert time.monotonic() - started >= 1.0, "it waited as Retry-After asked"


class Scripted(BaseHTTPRequestHandler):
    """Answers GETs from a script of (status, headers, body), one entry per request."""

    script: list[tuple[int, dict[str, str], bytes]] = []

    def do_GET(self):
        status, headers, body = self.script.pop(0)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


PROBLEM = {"Content-Type": "application/problem+json"}
BUSY = json.dumps({"type": "about:blank", "title": "Busy", "status": 503}).encode()


def test_retries_honour_retry_after_with_a_cap_and_jitter(stub):
    feed = json.dumps({"events": [], "next_cursor": "0.0"}).encode()
    Scripted.script = [
        (503, {**PROBLEM, "Retry-After": "2"}, BUSY),
        (429, {**PROBLEM, "Retry-After": "3600"}, BUSY),  # longer than the cap
        (503, PROBLEM, BUSY),  # no Retry-After: exponential, third attempt
        (200, {"Content-Type": "application/json"}, feed),
    ]
    slept: list[float] = []
    with AuthenticatedClient(base_url=stub, token="t") as client:
        resp = pp.polite(
            lambda: poll_feed.sync_detailed(client=client),
            pp.Backoff(cap=30, base=1, jitter=0.5, attempts=5),
            sleep=slept.append,
            rng=lambda: 1.0,
        )
    assert resp.status_code == 200 and isinstance(resp.parsed, Feed)
    assert slept == [2.5, 30.5, 4.5]
    assert Scripted.script == []

    # Jitter spreads pollers that were refused together.
    backoff = pp.Backoff(jitter=1.0)
    assert backoff.delay(0, 2, lambda: 0.0) == 2.0
    assert backoff.delay(0, 2, lambda: 0.99) == pytest.approx(2.99)


def test_retry_after_as_an_http_date():
    now = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.UTC)
    later = format_datetime(now + dt.timedelta(seconds=7), usegmt=True)
    assert pp.retry_after_seconds(later, now) == 7.0
    assert pp.retry_after_seconds(format_datetime(now, usegmt=True), now) == 0.0
    assert pp.retry_after_seconds("120") == 120.0
    assert pp.retry_after_seconds("soon") is None
    assert pp.retry_after_seconds(None) is None


def test_it_gives_up_after_its_attempts_and_leaves_other_errors_alone(stub):
    Scripted.script = [(503, {**PROBLEM, "Retry-After": "1"}, BUSY)] * 3
    slept: list[float] = []
    with AuthenticatedClient(base_url=stub, token="t") as client:
        with pytest.raises(pp.Stop):
            pp.polite(
                lambda: poll_feed.sync_detailed(client=client),
                pp.Backoff(attempts=3, jitter=0),
                sleep=slept.append,
            )
        assert slept == [1.0, 1.0, 1.0]
        # A 403 is an answer, not a reason to wait.
        forbidden = json.dumps({"type": "about:blank", "title": "Forbidden", "status": 403})
        Scripted.script = [(403, PROBLEM, forbidden.encode())]
        slept.clear()
        resp = pp.polite(lambda: poll_feed.sync_detailed(client=client), sleep=slept.append)
        assert resp.status_code == 403 and slept == []


def test_the_token_is_renewed_before_it_expires(server: Server):
    t = make_tenancy(server, "poller token")
    now = [0.0]
    session = pp.Session(
        server.base_url, t.provider.client_id, t.provider.client_secret, clock=lambda: now[0]
    )
    first = session.client()
    assert session.renewals == 1
    now[0] = 100.0
    assert session.client() is first, "a fresh token is reused"
    now[0] = 541.0  # the service's tokens last 600 s; renewed a minute before
    renewed = session.client()
    assert session.renewals == 2 and renewed is not first
    expect(poll_feed.sync_detailed(client=renewed), 200, Feed)
    session.invalidate()  # what a 401 does
    session.client()
    assert session.renewals == 3
    session.close()


def test_max_seconds_bounds_a_run(server: Server, tmp_path):
    t = make_tenancy(server, "poller bounded")
    started = time.monotonic()
    rc, out = run_poller(
        server.base_url, t.provider, tmp_path / "state", "--max-seconds", "3", "--wait", "60"
    )
    assert rc == 0, out
    assert time.monotonic() - started < 15, "the long poll is shortened to the time left"
    assert "polled: 0 event(s)" in out


def test_bad_credentials_stop_the_poller_with_an_error(server: Server, tmp_path):
    t = make_tenancy(server, "poller refused")
    wrong = Creds(t.provider.client_id, "not-the-secret")
    rc, out = run_poller(server.base_url, wrong, tmp_path / "state", "--once")
    assert rc == 1
    assert "token request refused: 401 invalid_client" in out
    assert "not-the-secret" not in out
