#!/usr/bin/env python3
"""A reference provider integration for eap-referrals, on the client that openapi-python-client
generates from the service's OpenAPI document (see README.md beside this file).

It long-polls the provider's change feed and:
  - on `offered`: reads the referral, accepts it with `If-Match` (re-reading on 412, skipping on
    409/410: someone else changed it for good), reveals the contact details and keeps a copy;
  - on `erased`: deletes its copy (the person asked for their data to be destroyed);
  - on `cancelled` / `offer_expired`: drops what it holds for that referral.
The feed cursor is kept in a file, replaced atomically after each batch, so a restart resumes
where it stopped. Handling is idempotent, so a batch replayed after a crash does no harm.

It retries politely on 429 and 503 (honouring `Retry-After`, capped, with jitter) and on
network errors, and renews its access token before it expires. It logs ids and statuses only,
never contact data.

    EAP_BASE_URL=http://127.0.0.1:8080 EAP_CLIENT_ID=… EAP_CLIENT_SECRET_FILE=secret.txt \
        python provider_poller.py --state-dir ./provider-state
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import logging
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote_plus

import httpx

from eap_referrals_client import AuthenticatedClient
from eap_referrals_client.api.auth import token
from eap_referrals_client.api.provider import accept, contact, get_referral, poll_feed
from eap_referrals_client.models import (
    ContactReveal,
    Feed,
    FeedEvent,
    FeedKind,
    GrantType,
    ProviderReferral,
    Status,
    TokenForm,
    TokenResponse,
)
from eap_referrals_client.types import UNSET, Response

log = logging.getLogger("provider-poller")

# Statuses in which this provider holds the referral and may read the contact details.
IN_CARE = {Status.ACCEPTED, Status.CONTACTED, Status.SCHEDULED, Status.IN_PROGRESS}
RETRYABLE = {429, 503}


class Stop(Exception):
    """Something a retry will not fix (bad credentials, an answer this code does not expect)."""


# ---------------------------------------------------------------------------------------------
# Polite retries


@dataclass(frozen=True)
class Backoff:
    cap: float = 60.0  # never wait longer than this for one retry, whatever the server says
    base: float = 1.0  # first wait when the server gives no Retry-After; doubles each time
    jitter: float = 1.0  # up to this many seconds added at random, so pollers do not retry in step
    attempts: int = 8  # then give up: the caller decides what giving up means

    def delay(self, attempt: int, retry_after: float | None, rng: Callable[[], float]) -> float:
        wanted = retry_after if retry_after is not None else self.base * 2**attempt
        return min(self.cap, wanted) + self.jitter * rng()


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """`Retry-After` as seconds: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def polite(
    call: Callable[[], Response],
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> Response:
    """Runs `call` (a generated `sync_detailed` with its arguments bound) until it gets an
    answer other than 429 or 503, waiting between attempts; network errors are retried too."""
    for attempt in range(backoff.attempts):
        try:
            resp = call()
        except httpx.TransportError as e:
            wait = backoff.delay(attempt, None, rng)
            log.warning("network error (%s); retrying in %.1f s", type(e).__name__, wait)
        else:
            if resp.status_code not in RETRYABLE:
                return resp
            retry_after = retry_after_seconds(resp.headers.get("retry-after"))
            wait = backoff.delay(attempt, retry_after, rng)
            log.warning("%d from the server; retrying in %.1f s", resp.status_code, wait)
        sleep(wait)
    raise Stop(f"no answer after {backoff.attempts} attempts")


# ---------------------------------------------------------------------------------------------
# Credentials and the access token


class Session:
    """The client credentials and a current access token, renewed before it expires."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 75.0,
        backoff: Backoff = Backoff(),
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base_url = base_url
        # HTTP Basic client authentication (RFC 6749 §2.3.1: id and secret form-encoded first),
        # the document's `client_basic` scheme: the generated token function takes an
        # AuthenticatedClient, which sends it with the Basic prefix.
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
        self._basic = base64.b64encode(pair.encode()).decode()
        self._timeout = httpx.Timeout(timeout)
        self._backoff = backoff
        self._clock = clock
        self._client: AuthenticatedClient | None = None
        self._renew_at = 0.0
        self.renewals = 0

    def client(self) -> AuthenticatedClient:
        if self._client is None or self._clock() >= self._renew_at:
            self._renew()
        return self._client

    def invalidate(self) -> None:
        """The server refused the token (revoked, or the secret was rotated): get a new one."""
        self._renew_at = 0.0

    def _renew(self) -> None:
        grant = TokenForm(grant_type=GrantType.CLIENT_CREDENTIALS)
        with AuthenticatedClient(
            base_url=self.base_url, token=self._basic, prefix="Basic", timeout=self._timeout
        ) as basic:
            resp = polite(lambda: token.sync_detailed(client=basic, body=grant), self._backoff)
        if resp.status_code != 200 or not isinstance(resp.parsed, TokenResponse):
            # RFC 6749 error codes only; the response never echoes the secret.
            error = getattr(resp.parsed, "error", "")
            raise Stop(f"token request refused: {int(resp.status_code)} {error}")
        issued = resp.parsed
        # Renew a minute before expiry (or half-way, for very short lifetimes), so no request
        # goes out with a token about to lapse.
        self._renew_at = self._clock() + max(issued.expires_in - 60, issued.expires_in / 2)
        if self._client is not None:
            self._client.get_httpx_client().close()
        self._client = AuthenticatedClient(
            base_url=self.base_url, token=issued.access_token, timeout=self._timeout
        )
        self.renewals += 1

    def call(self, op: Callable[..., Response], *args, **kwargs) -> Response:
        """Runs a generated `sync_detailed` politely with the current token; on 401 renews the
        token once and tries again."""
        resp = polite(lambda: op(*args, client=self.client(), **kwargs), self._backoff)
        if resp.status_code == 401:
            self.invalidate()
            resp = polite(lambda: op(*args, client=self.client(), **kwargs), self._backoff)
        return resp

    def close(self) -> None:
        if self._client is not None:
            self._client.get_httpx_client().close()


# ---------------------------------------------------------------------------------------------
# What the provider keeps on disk


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never half of one, even after a crash."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:  # mkstemp makes it 0600: only this user reads it
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # The rename itself is durable once the directory is synced.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class State:
    """The poller's files: `cursor` (where the feed resumes) and `contacts/<referral id>.json`,
    the provider's own copy of each person's contact details.

    This stands in for the provider's case system. A real one encrypts these records at rest
    (disk or database encryption, keys held apart from the data) and applies its own access
    control; the service's part is to say when a copy must go (`erased`).
    """

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.contacts = self.dir / "contacts"
        self.contacts.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._cursor = self.dir / "cursor"

    def cursor(self) -> str | None:
        try:
            return self._cursor.read_text().strip() or None
        except FileNotFoundError:
            return None

    def save_cursor(self, cursor: str) -> None:
        write_atomically(self._cursor, cursor.encode())

    def _path(self, referral_id: str) -> Path:
        # Ids come from the service, but a file name is built from them: accept UUIDs only.
        return self.contacts / f"{uuid.UUID(referral_id)}.json"

    def holds(self, referral_id: str) -> bool:
        return self._path(referral_id).exists()

    def keep(self, reveal: ContactReveal) -> None:
        write_atomically(self._path(reveal.referral_id), json.dumps(reveal.to_dict()).encode())

    def drop(self, referral_id: str) -> bool:
        try:
            self._path(referral_id).unlink()
        except FileNotFoundError:
            return False
        dir_fd = os.open(self.contacts, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return True


# ---------------------------------------------------------------------------------------------
# The feed


def unexpected(what: str, resp: Response) -> Stop:
    title = getattr(resp.parsed, "title", "")
    return Stop(f"{what}: unexpected {int(resp.status_code)} {title}".rstrip())


class Poller:
    def __init__(self, session: Session, state: State, *, wait: int = 30, limit: int = 100):
        self.session = session
        self.state = state
        self.wait = wait
        self.limit = limit

    def poll_once(self, wait: int | None = None) -> int:
        """One long poll; handles its batch, then moves the cursor past it. Returns the number
        of events handled."""
        cursor = self.state.cursor()
        resp = self.session.call(
            poll_feed.sync_detailed,
            after=cursor if cursor else UNSET,
            limit=self.limit,
            wait=self.wait if wait is None else wait,
        )
        if resp.status_code != 200 or not isinstance(resp.parsed, Feed):
            raise unexpected("feed", resp)
        feed = resp.parsed
        for event in feed.events:
            self.handle(event)
        # After the batch, never before: a crash mid-batch replays it, and handling is
        # idempotent, while a cursor saved early would skip events for good.
        if feed.next_cursor != cursor:
            self.state.save_cursor(feed.next_cursor)
        return len(feed.events)

    def handle(self, event: FeedEvent) -> None:
        rid, kind = event.referral_id, event.kind
        log.info("event %s %s", kind, rid)
        if kind == FeedKind.OFFERED:
            self.take(rid)
        elif kind == FeedKind.ERASED:
            deleted = self.state.drop(rid)
            log.info("erased %s: %s", rid, "local copy deleted" if deleted else "no copy held")
        elif kind in (FeedKind.CANCELLED, FeedKind.OFFER_EXPIRED):
            if self.state.drop(rid):
                log.info("%s %s: local copy deleted", kind, rid)
        # The rest (accepted, contacted, …, declined) report this provider's own actions.

    def take(self, rid: str, attempts: int = 3) -> None:
        """Accepts an offered referral and keeps its contact details."""
        for _ in range(attempts):
            read = self.session.call(get_referral.sync_detailed, rid)
            if read.status_code in (404, 410):
                log.info("offered %s: gone (%d), skipped", rid, read.status_code)
                return
            if read.status_code != 200 or not isinstance(read.parsed, ProviderReferral):
                raise unexpected(f"read {rid}", read)
            referral = read.parsed
            if referral.status in IN_CARE:
                break  # ours already: a replayed batch, or a crash before the copy was kept
            if referral.status != Status.OFFERED:
                log.info("offered %s: now %s, skipped", rid, referral.status)
                return
            accepted = self.session.call(accept.sync_detailed, rid, if_match=read.headers["etag"])
            if accepted.status_code == 200:
                log.info("accepted %s", rid)
                break
            if accepted.status_code == 412:
                log.info("accept %s: changed since read (412), re-reading", rid)
                continue
            if accepted.status_code in (404, 409, 410):
                log.info("accept %s: refused (%d), skipped", rid, accepted.status_code)
                return
            raise unexpected(f"accept {rid}", accepted)
        else:
            log.warning("accept %s: still changing after %d reads, skipped", rid, attempts)
            return
        if self.state.holds(rid):
            return
        reveal = self.session.call(contact.sync_detailed, rid)
        if reveal.status_code in (404, 409, 410):
            log.info("contact %s: unavailable (%d), not kept", rid, reveal.status_code)
            return
        if reveal.status_code != 200 or not isinstance(reveal.parsed, ContactReveal):
            raise unexpected(f"contact {rid}", reveal)
        self.state.keep(reveal.parsed)
        log.info("contact %s: kept", rid)


# ---------------------------------------------------------------------------------------------
# Command line


def secret_from_env() -> str:
    path = os.environ.get("EAP_CLIENT_SECRET_FILE")
    if path:
        return Path(path).read_text().strip()
    secret = os.environ.get("EAP_CLIENT_SECRET")
    if not secret:
        raise Stop("set EAP_CLIENT_SECRET_FILE (or EAP_CLIENT_SECRET)")
    return secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=os.environ.get("EAP_BASE_URL"))
    parser.add_argument("--state-dir", type=Path, default=Path("provider-state"))
    parser.add_argument("--wait", type=int, default=30, help="long-poll wait, 0–60 s")
    parser.add_argument("--once", action="store_true", help="one poll and its batch, then exit")
    parser.add_argument("--max-seconds", type=float, help="stop after about this long")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    # httpx logs every request line at INFO, which would put ids in URLs next to our own
    # lines; our own lines say what happened.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not args.base_url or not os.environ.get("EAP_CLIENT_ID"):
        parser.error("set --base-url (or EAP_BASE_URL) and EAP_CLIENT_ID")
    if not 0 <= args.wait <= 60:
        parser.error("--wait must be 0–60")

    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True  # finish the batch in hand, save the cursor, then exit
        log.info("signal %d: stopping after this poll", signum)

    signal.signal(signal.SIGTERM, stop)
    deadline = None if args.max_seconds is None else time.monotonic() + args.max_seconds
    session = None
    try:
        session = Session(args.base_url, os.environ["EAP_CLIENT_ID"], secret_from_env())
        poller = Poller(session, State(args.state_dir), wait=args.wait)
        while not stopping:
            wait = args.wait
            if deadline is not None:
                left = deadline - time.monotonic()
                if left < 1:
                    break
                wait = min(wait, int(left))
            handled = poller.poll_once(wait)
            log.info("polled: %d event(s)", handled)
            if args.once:
                break
    except Stop as e:
        log.error("%s", e)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if session is not None:
            session.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
