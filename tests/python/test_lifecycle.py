"""The whole referral lifecycle, driven only through the client openapi-python-client generates
from openapi/openapi.json: what an integration team gets from the document alone.

Every request goes through a generated `sync_detailed` function; the test records each one
(method and path, from the httpx response hook) and ends by checking that every operation in
the document was called, so a new operation that its generated function cannot drive fails here.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import importlib
import io
import json
import os
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field

from eap_referrals_client import AuthenticatedClient, Client
from eap_referrals_client.api.admin import (
    admin_disable_webhook,
    admin_erase,
    admin_list_webhooks,
    assign,
    create_client,
    create_contract,
    create_employer,
    create_operator_webhook,
    create_provider,
    deactivate_contract,
    deactivate_employer,
    deactivate_provider,
    delete_operator_webhook,
    get_client,
    get_contract,
    get_employer,
    get_operator_webhook,
    get_provider,
    list_clients,
    list_contracts,
    list_employers,
    list_operator_webhook_deliveries,
    list_operator_webhooks,
    list_providers,
    list_unroutable,
    ping_operator_webhook,
    revoke_client,
    rotate_operator_webhook_secret,
    rotate_secret,
    update_contract,
    update_employer,
    update_provider,
)
from eap_referrals_client.api.audit import (
    audit_stats,
    consistency_proof,
    export_events,
    inclusion_proof,
    list_checkpoints,
    list_events,
    public_key,
    verify_log,
)
from eap_referrals_client.api.auth import jwks, server_metadata, token
from eap_referrals_client.api.operations import healthz, metrics, readyz
from eap_referrals_client.api.provider import (
    accept,
    contact,
    create_webhook,
    decline,
    delete_webhook,
    get_referral,
    get_webhook,
    list_referrals,
    list_webhook_deliveries,
    list_webhooks,
    ping_webhook,
    poll_feed,
    rotate_webhook_secret,
    update_status,
)
from eap_referrals_client.api.referrals import (
    cancel,
    erase,
    list_portal_providers,
    read_status,
    submit,
)
from eap_referrals_client.api.reports import utilization
from eap_referrals_client.models import (
    AccessOutcome,
    AccessStats,
    AccessStatsBucket,
    AccessStatsGroup,
    Action,
    ActorRole,
    Assign,
    Assigned,
    CheckpointJwks,
    CheckpointPage,
    ClientStatus,
    ClientView,
    ClientWithSecret,
    CoarseStatus,
    ConsistencyProof,
    ContactReveal,
    Contract,
    ContractInput,
    ContractPatch,
    CreateWebhook,
    Decline,
    DeclineReason,
    DeliveryAttempts,
    Employer,
    EmployerInput,
    EmployerPatch,
    EndpointStatus,
    EndpointView,
    EventPage,
    ExportEventsFormat,
    Feed,
    FeedKind,
    GrantType,
    GroupBy,
    Health,
    HealthStatus,
    InclusionProof,
    Jwks,
    LoggedAction,
    Modality,
    NewAdminClient,
    NewAdminClientRole,
    NewAuditorClient,
    NewAuditorClientRole,
    NewHrPortalClient,
    NewHrPortalClientRole,
    NewProviderClient,
    NewProviderClientRole,
    OAuthError,
    OperatorWebhookWithSecret,
    Outcome,
    Problem,
    Provider,
    ProviderInput,
    ProviderPatch,
    ProviderReferral,
    ReferralStatus,
    ReportedStatus,
    Role,
    ServerMetadata,
    Service,
    Status,
    StatusUpdate,
    Submitted,
    TokenForm,
    TokenResponse,
    Urgency,
    Utilization,
    VerifyResponse,
    WebhookView,
    WebhookWithSecret,
)
from support import LONG, Creds, Server, basic_auth, creds_of, expect, need, referral

METHODS = ("get", "put", "post", "patch", "delete")


def documented_operations() -> dict[tuple[str, str], tuple[str, str]]:
    """(METHOD, path template) → (tag, operationId), for every operation in the document."""
    with open(need("EAP_PYTEST_DOCUMENT")) as f:
        document = json.load(f)
    return {
        (method.upper(), path): (op["tags"][0], op["operationId"])
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def template_matches(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


@dataclass
class Recorder:
    """Every (method, path) the generated functions sent, seen from httpx's response hook."""

    seen: set[tuple[str, str]] = field(default_factory=set)

    def hook(self, response) -> None:
        self.seen.add((response.request.method, response.request.url.path))

    def args(self) -> dict:
        return {"httpx_args": {"event_hooks": {"response": [self.hook]}}}

    def missing(self, operations) -> list[str]:
        return sorted(
            f"{method} {template}"
            for method, template in operations
            if not any(m == method and template_matches(template, p) for m, p in self.seen)
        )


def test_every_documented_operation_has_a_generated_function():
    """openapi-python-client silently leaves out what it cannot generate (CI also fails on its
    warnings): each operationId must be a module with the four generated entry points."""
    for (method, path), (tag, operation_id) in documented_operations().items():
        module = importlib.import_module(f"eap_referrals_client.api.{tag}.{operation_id}")
        for entry in ("sync_detailed", "sync", "asyncio_detailed", "asyncio"):
            assert callable(getattr(module, entry, None)), f"{method} {path}: no {entry}"


class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps what it got and checks every delivery with
    the Standard Webhooks reference library (`standardwebhooks`, an implementation independent
    of the service's), against each secret it has been told: 204 when one of them verifies the
    delivery, 400 otherwise (a receiver refusing a bad signature, as integrators' do)."""

    def __init__(self):
        import http.server
        import threading

        from standardwebhooks import Webhook

        received = self.received = []
        secrets = self.secrets = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = dict(self.headers)
                verified_by = [s for s in list(secrets) if verifies(Webhook(s), body, headers)]
                received.append((headers, body, verified_by))
                self.send_response(204 if verified_by else 400)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next_delivery(self, seen: int, timeout: float = 20):
        """The first delivery after the `seen` first ones, waiting for it."""
        deadline = time.monotonic() + timeout
        while len(self.received) <= seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) > seen, "no delivery arrived"
        return self.received[seen]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def verifies(webhook, body: bytes, headers: dict) -> bool:
    """Whether the `standardwebhooks` library accepts the delivery (signature and timestamp)."""
    from standardwebhooks.webhooks import WebhookVerificationError

    try:
        webhook.verify(body, headers)
        return True
    except WebhookVerificationError:
        return False


def assert_tampering_refused(secret: str, headers: dict, body: bytes):
    """The library refuses what a delivery's signature does not cover as it came: another body,
    another timestamp (signed too), an old timestamp, an unknown secret."""
    from standardwebhooks import Webhook

    webhook = Webhook(secret)
    assert verifies(webhook, body, headers), "the genuine delivery verifies"
    payload = json.loads(body)
    payload["type"] = "referral.erased"
    assert not verifies(webhook, json.dumps(payload).encode(), headers), "body changed"
    assert not verifies(webhook, body + b" ", headers), "one byte added"
    stamp = int(headers["webhook-timestamp"])
    moved = {**headers, "webhook-timestamp": str(stamp + 1)}
    assert not verifies(webhook, body, moved), "timestamp changed"
    replayed = {**headers, "webhook-timestamp": str(stamp - 3600)}
    assert not verifies(webhook, body, replayed), "an hour-old timestamp"
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    assert not verifies(Webhook(other), body, headers), "another secret"


def operator_endpoint(admin: AuthenticatedClient) -> tuple[str, Receiver]:
    """An admin registers an operator (alert) endpoint, lists and reads it, rotates its secret,
    pings it and reads the attempt; the ping is verified by the `standardwebhooks` library with
    the old and the new secret. The receiver stays open for the alerts that follow."""
    receiver = Receiver()
    created = expect(
        create_operator_webhook.sync_detailed(
            client=admin, body=CreateWebhook(url=receiver.url, description="on-call pager")
        ),
        201,
        OperatorWebhookWithSecret,
    )
    assert created.secret.startswith("whsec_") and created.status == EndpointStatus.ACTIVE
    receiver.secrets.append(created.secret)
    listed = expect(list_operator_webhooks.sync_detailed(client=admin), 200)
    assert [w.id for w in listed.items] == [created.id]
    assert expect(get_operator_webhook.sync_detailed(created.id, client=admin), 200, EndpointView)
    rotated = expect(
        rotate_operator_webhook_secret.sync_detailed(created.id, client=admin),
        200,
        OperatorWebhookWithSecret,
    )
    receiver.secrets.append(rotated.secret)
    expect(ping_operator_webhook.sync_detailed(created.id, client=admin), 202)
    headers, body, verified_by = receiver.next_delivery(0)
    assert json.loads(body)["type"] == "ping"
    assert verified_by == [created.secret, rotated.secret], "old and new secret verify"
    assert_tampering_refused(rotated.secret, headers, body)
    deadline = time.monotonic() + 20
    attempts = expect(
        list_operator_webhook_deliveries.sync_detailed(created.id, client=admin),
        200,
        DeliveryAttempts,
    )
    while not attempts.items and time.monotonic() < deadline:
        time.sleep(0.1)
        attempts = list_operator_webhook_deliveries.sync_detailed(created.id, client=admin).parsed
    assert [a.status_code for a in attempts.items] == [204]
    return created.id, receiver


def webhooks_round_trip(prov: AuthenticatedClient, admin: AuthenticatedClient):
    """A provider registers an endpoint, pings it, rotates its secret, pings it again and reads
    the attempts; an admin lists and disables it; the provider deletes it. Every delivery is
    verified by the `standardwebhooks` library: before the rotation with the one secret, during
    the 24-hour overlap with the old secret and with the new one."""
    receiver = Receiver()
    try:
        created = expect(
            create_webhook.sync_detailed(
                client=prov, body=CreateWebhook(url=receiver.url, description="case system")
            ),
            201,
            WebhookWithSecret,
        )
        assert created.secret.startswith("whsec_") and created.status == EndpointStatus.ACTIVE
        receiver.secrets.append(created.secret)
        listed = expect(list_webhooks.sync_detailed(client=prov), 200)
        assert [w.id for w in listed.items] == [created.id]
        assert expect(get_webhook.sync_detailed(created.id, client=prov), 200, WebhookView)

        expect(ping_webhook.sync_detailed(created.id, client=prov), 202)
        headers, body, verified_by = receiver.next_delivery(0)
        assert json.loads(body)["type"] == "ping"
        assert len(headers["webhook-signature"].split(" ")) == 1, "one secret, one signature"
        assert verified_by == [created.secret]
        assert_tampering_refused(created.secret, headers, body)

        rotated = expect(
            rotate_webhook_secret.sync_detailed(created.id, client=prov), 200, WebhookWithSecret
        )
        assert rotated.secret != created.secret and rotated.previous_secret_valid_until
        receiver.secrets.append(rotated.secret)
        expect(ping_webhook.sync_detailed(created.id, client=prov), 202)
        headers, body, verified_by = receiver.next_delivery(1)
        assert json.loads(body)["type"] == "ping"
        assert len(headers["webhook-signature"].split(" ")) == 2, "both secrets sign"
        assert verified_by == [created.secret, rotated.secret], "old and new secret verify"
        assert_tampering_refused(created.secret, headers, body)
        assert_tampering_refused(rotated.secret, headers, body)
        assert all(v for _, _, v in receiver.received), "every delivery verified"

        deadline = time.monotonic() + 20
        attempts = expect(
            list_webhook_deliveries.sync_detailed(created.id, client=prov), 200, DeliveryAttempts
        )
        while len(attempts.items) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            attempts = list_webhook_deliveries.sync_detailed(created.id, client=prov).parsed
        assert [a.status_code for a in attempts.items] == [204, 204]
        assert attempts.items[0].webhook_id == headers["webhook-id"], "newest first"
        every = expect(admin_list_webhooks.sync_detailed(client=admin), 200)
        assert created.id in [w.id for w in every.items]
        disabled = expect(
            admin_disable_webhook.sync_detailed(created.id, client=admin), 200, WebhookView
        )
        assert disabled.status == EndpointStatus.DISABLED
        expect(delete_webhook.sync_detailed(created.id, client=prov), 204)
    finally:
        receiver.close()


def etag(resp) -> str:
    value = resp.headers.get("etag")
    assert value and re.fullmatch(r'"\d+"', value), "a strong ETag carrying the version"
    return value


def feed_until(provider: AuthenticatedClient, cursor, wanted: tuple[str, FeedKind], seconds=20):
    """Long-polls the provider's feed until the (referral id, kind) event arrives."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        page = expect(poll_feed.sync_detailed(client=provider, after=cursor, wait=10), 200, Feed)
        assert page.next_cursor, "a cursor to resume from, even after an empty poll"
        cursor = page.next_cursor
        assert all(isinstance(e.kind, FeedKind) for e in page.events), "kinds read typed"
        if any((e.referral_id, e.kind) == wanted for e in page.events):
            return cursor
    raise AssertionError(f"no {wanted[1]} event for the referral in the feed")


def wait_for_sealed(
    auditor, action: LoggedAction, resource_id: str, at_least=1, seconds=20
) -> EventPage:
    """Events are searchable once sealed, within one checkpoint interval (1 s here): waits
    until `at_least` of them are. One sealed event says nothing of a later one, which the
    sealer may not have reached yet."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        page = expect(
            list_events.sync_detailed(client=auditor, action=action, resource_id=resource_id),
            200,
            EventPage,
        )
        if len(page.items) >= at_least:
            return page
        time.sleep(0.5)
    raise AssertionError(
        f"{at_least} {action.value} on the referral were not sealed in {seconds} s"
    )


def test_the_whole_lifecycle_through_the_generated_client(server: Server, tmp_path):
    rec = Recorder()
    url = server.base_url
    anon = Client(base_url=url, **rec.args())

    # Operations: liveness, readiness, the token keys, the checkpoint key.
    assert expect(healthz.sync_detailed(client=anon), 200, Health).status == HealthStatus.OK
    assert expect(readyz.sync_detailed(client=anon), 200, Health).status == HealthStatus.READY
    keys = expect(jwks.sync_detailed(client=anon), 200, Jwks)
    assert keys.keys and all(k.kty == "OKP" and k.crv == "Ed25519" for k in keys.keys)
    checkpoint_key = expect(public_key.sync_detailed(client=anon), 200, CheckpointJwks)
    assert checkpoint_key.keys
    # RFC 8414 metadata: what an OAuth library configures itself from.
    meta = expect(server_metadata.sync_detailed(client=anon), 200, ServerMetadata)
    assert meta.token_endpoint == f"{meta.issuer}/oauth/token"
    assert meta.grant_types_supported == ["client_credentials"]
    assert set(meta.token_endpoint_auth_methods_supported) == {
        "client_secret_basic",
        "client_secret_post",
    }

    # Tokens: HTTP Basic client authentication (the document's `client_basic` scheme, so the
    # generated function takes an AuthenticatedClient, here with the Basic prefix); a wrong
    # secret is RFC 6749's invalid_client.
    grant = TokenForm(grant_type=GrantType.CLIENT_CREDENTIALS)

    def login(creds: Creds) -> AuthenticatedClient:
        with basic_auth(creds, base_url=url, **rec.args()) as basic:
            t = expect(token.sync_detailed(client=basic, body=grant), 200, TokenResponse)
        assert t.token_type == "Bearer" and t.expires_in > 0
        return AuthenticatedClient(base_url=url, token=t.access_token, timeout=LONG, **rec.args())

    def refused(creds: Creds) -> None:
        with basic_auth(creds, base_url=url, **rec.args()) as basic:
            resp = token.sync_detailed(client=basic, body=grant)
        assert expect(resp, 401, OAuthError).error == "invalid_client"
        assert resp.headers["www-authenticate"].startswith("Basic")

    admin = login(server.admin)
    refused(Creds(server.admin.client_id, "not-the-secret"))
    # The form alternative (client_secret_post): the credentials in the body, no Authorization
    # header. The generated function is typed for an AuthenticatedClient only (the generator
    # reads any `security` list as required, even with the document's empty alternative), so
    # this passes the unauthenticated Client, which works at run time.
    form = TokenForm(
        grant_type=GrantType.CLIENT_CREDENTIALS,
        client_id=server.admin.client_id,
        client_secret=server.admin.client_secret,
    )
    expect(token.sync_detailed(client=anon, body=form), 200, TokenResponse)

    # The directory: an employer, a provider, a contract between them; read, listed, changed.
    employer = expect(
        create_employer.sync_detailed(client=admin, body=EmployerInput(name="Python Trust")),
        201,
        Employer,
    )
    assert employer.active
    assert expect(get_employer.sync_detailed(employer.id, client=admin), 200, Employer).name == (
        "Python Trust"
    )
    renamed = expect(
        update_employer.sync_detailed(
            employer.id, client=admin, body=EmployerPatch(name="Python Health Trust")
        ),
        200,
        Employer,
    )
    assert renamed.name == "Python Health Trust"
    employers = expect(list_employers.sync_detailed(client=admin, limit=200), 200)
    assert employer.id in [e.id for e in employers.items]

    provider = expect(
        create_provider.sync_detailed(
            client=admin,
            body=ProviderInput(
                name="Python Counselling",
                services=[Service.COUNSELLING],
                languages=["en"],
                regions=["GB"],
                modalities=[Modality.VIDEO, Modality.PHONE],
                capacity=10,
            ),
        ),
        201,
        Provider,
    )
    assert provider.services == [Service.COUNSELLING] and provider.active_referrals == 0
    assert expect(get_provider.sync_detailed(provider.id, client=admin), 200, Provider).id == (
        provider.id
    )
    grown = expect(
        update_provider.sync_detailed(provider.id, client=admin, body=ProviderPatch(capacity=20)),
        200,
        Provider,
    )
    assert grown.capacity == 20
    providers = expect(list_providers.sync_detailed(client=admin, limit=200), 200)
    assert provider.id in [p.id for p in providers.items]

    contract = expect(
        create_contract.sync_detailed(
            client=admin,
            body=ContractInput(employer_id=employer.id, provider_id=provider.id, priority=2),
        ),
        201,
        Contract,
    )
    assert contract.in_force
    assert expect(get_contract.sync_detailed(contract.id, client=admin), 200, Contract).id == (
        contract.id
    )
    preferred = expect(
        update_contract.sync_detailed(contract.id, client=admin, body=ContractPatch(priority=1)),
        200,
        Contract,
    )
    assert preferred.priority == 1
    contracts = expect(list_contracts.sync_detailed(client=admin, employer_id=employer.id), 200)
    assert [c.id for c in contracts.items] == [contract.id]

    # API clients, one per role; a spare admin client has its secret rotated, then is revoked.
    def make(body) -> ClientWithSecret:
        made = expect(create_client.sync_detailed(client=admin, body=body), 201, ClientWithSecret)
        assert made.status == ClientStatus.ACTIVE and made.client_secret
        return made

    portal_client = make(
        NewHrPortalClient(
            name="Python portal", role=NewHrPortalClientRole.HR_PORTAL, employer_id=employer.id
        )
    )
    assert portal_client.role == Role.HR_PORTAL and portal_client.employer_id == employer.id
    provider_client = make(
        NewProviderClient(
            name="Python case system",
            role=NewProviderClientRole.PROVIDER,
            provider_id=provider.id,
        )
    )
    assert provider_client.provider_id == provider.id
    auditor_client = make(NewAuditorClient(name="Python audit", role=NewAuditorClientRole.AUDITOR))
    spare = make(NewAdminClient(name="Python spare admin", role=NewAdminClientRole.ADMIN))
    read_back = expect(get_client.sync_detailed(spare.client_id, client=admin), 200, ClientView)
    assert read_back.role == Role.ADMIN and read_back.name == "Python spare admin"
    listed = expect(list_clients.sync_detailed(client=admin, limit=200), 200)
    assert all(isinstance(c, ClientView) for c in listed.items), "page items are the component"
    assert {portal_client.client_id, provider_client.client_id, spare.client_id} <= {
        c.client_id for c in listed.items
    }
    rotated = expect(
        rotate_secret.sync_detailed(spare.client_id, client=admin), 200, ClientWithSecret
    )
    assert rotated.client_secret != spare.client_secret
    refused(creds_of(spare))
    login(creds_of(rotated))
    revoked = expect(revoke_client.sync_detailed(spare.client_id, client=admin), 200, ClientView)
    assert revoked.status == ClientStatus.REVOKED and revoked.revoked_at
    refused(creds_of(rotated))

    portal = login(creds_of(portal_client))
    prov = login(creds_of(provider_client))
    auditor = login(creds_of(auditor_client))

    webhooks_round_trip(prov, admin)

    # The provider's feed from the start: nothing yet, but a cursor to resume from.
    start = expect(poll_feed.sync_detailed(client=prov), 200, Feed)
    assert start.events == [] and start.next_cursor
    cursor = start.next_cursor

    # The portal submits; a retry with the same Idempotency-Key is the same referral.
    body = referral(name="Sam", phone="+447700900123")
    key = str(uuid.uuid4())
    first = submit.sync_detailed(client=portal, body=body, idempotency_key=key)
    submitted = expect(first, 201, Submitted)
    assert submitted.status == CoarseStatus.RECEIVED and submitted.status_token
    assert first.headers["location"] == f"/v1/referrals/{submitted.id}"
    assert "idempotent-replayed" not in first.headers
    replay = submit.sync_detailed(client=portal, body=body, idempotency_key=key)
    assert expect(replay, 201, Submitted).id == submitted.id
    assert replay.headers.get("idempotent-replayed") == "true"
    ref_id, ref_token = submitted.id, submitted.status_token
    coarse = expect(
        read_status.sync_detailed(ref_id, client=portal, referral_token=ref_token),
        200,
        ReferralStatus,
    )
    assert coarse.status == CoarseStatus.RECEIVED

    # The provider long-polls and sees the offer; reads it (ETag) and accepts with If-Match.
    cursor = feed_until(prov, cursor, (ref_id, FeedKind.OFFERED))
    read = get_referral.sync_detailed(ref_id, client=prov)
    offered = expect(read, 200, ProviderReferral)
    assert offered.status == Status.OFFERED
    assert (offered.service_type, offered.urgency, offered.modality) == (
        Service.COUNSELLING,
        Urgency.ROUTINE,
        Modality.VIDEO,
    )
    assert set(offered.allowed_actions) == {Action.ACCEPT, Action.DECLINE}
    assert offered.offer_expires_at
    tag = etag(read)
    assert tag == f'"{offered.version}"'
    accepted_resp = accept.sync_detailed(ref_id, client=prov, if_match=tag)
    accepted = expect(accepted_resp, 200, ProviderReferral)
    assert accepted.status == Status.ACCEPTED and accepted.version > offered.version
    # The version it read is gone: acting on it again is refused, not applied twice.
    stale = expect(accept.sync_detailed(ref_id, client=prov, if_match=tag), 412, Problem)
    assert stale.status == 412
    tag = etag(accepted_resp)

    # The contact reveal, each read its own access event.
    revealed = expect(contact.sync_detailed(ref_id, client=prov), 200, ContactReveal)
    assert revealed.referral_id == ref_id
    assert revealed.contact.preferred_name == body.contact.preferred_name
    assert revealed.contact.phone == body.contact.phone
    assert revealed.note == body.note
    mine = expect(list_referrals.sync_detailed(client=prov, status=Status.ACCEPTED), 200)
    assert ref_id in [r.id for r in mine.items]

    # Progress through to closed; each step needs the version the last one returned.
    steps = [
        (StatusUpdate(status=ReportedStatus.CONTACTED), Status.CONTACTED),
        (StatusUpdate(status=ReportedStatus.SCHEDULED), Status.SCHEDULED),
        (StatusUpdate(status=ReportedStatus.IN_PROGRESS), Status.IN_PROGRESS),
        (
            StatusUpdate(status=ReportedStatus.CLOSED, outcome=Outcome.COMPLETED),
            Status.CLOSED,
        ),
    ]
    for update, expected in steps:
        moved = update_status.sync_detailed(ref_id, client=prov, if_match=tag, body=update)
        assert expect(moved, 200, ProviderReferral).status == expected
        tag = etag(moved)
    closed = expect(get_referral.sync_detailed(ref_id, client=prov), 200, ProviderReferral)
    assert closed.outcome == Outcome.COMPLETED and closed.closed_at
    assert closed.allowed_actions == []
    coarse = expect(
        read_status.sync_detailed(ref_id, client=portal, referral_token=ref_token),
        200,
        ReferralStatus,
    )
    assert coarse.status == CoarseStatus.CLOSED and coarse.closed_at

    # A decline: the only contracted provider has tried it, so it waits in the unroutable queue
    # with the reasons (and the operators' endpoint is alerted, with its id and urgency only);
    # an admin assigns it back; the portal cancels it.
    operator_id, operator_receiver = operator_endpoint(admin)
    second = expect(
        submit.sync_detailed(
            client=portal, body=referral("Alex", "+447700900456"), idempotency_key=str(uuid.uuid4())
        ),
        201,
        Submitted,
    )
    cursor = feed_until(prov, cursor, (second.id, FeedKind.OFFERED))
    read = get_referral.sync_detailed(second.id, client=prov)
    expect(read, 200, ProviderReferral)
    declined = decline.sync_detailed(
        second.id,
        client=prov,
        if_match=etag(read),
        body=Decline(reason=DeclineReason.AT_CAPACITY),
    )
    expect(declined, 204)
    headers, body, verified_by = operator_receiver.next_delivery(1)
    alert = json.loads(body)
    assert alert == {
        "type": "operator.referral_unroutable",
        "timestamp": alert["timestamp"],
        "data": {"referral_id": second.id, "urgency": "routine"},
    }, alert
    assert verified_by, "the alert verifies"
    expect(delete_operator_webhook.sync_detailed(operator_id, client=admin), 204)
    operator_receiver.close()
    queue = expect(list_unroutable.sync_detailed(client=admin), 200)
    waiting = [u for u in queue.items if u.id == second.id]
    assert waiting, "the declined referral waits for an admin"
    assert waiting[0].routing and [r.provider_id for r in waiting[0].routing.reports] == [
        provider.id
    ]
    assigned = expect(
        assign.sync_detailed(second.id, client=admin, body=Assign(provider_id=provider.id)),
        200,
        Assigned,
    )
    assert assigned.status == Status.OFFERED and assigned.provider_id == provider.id
    cursor = feed_until(prov, cursor, (second.id, FeedKind.OFFERED))
    cancelled = expect(
        cancel.sync_detailed(second.id, client=portal, referral_token=second.status_token),
        200,
        ReferralStatus,
    )
    assert cancelled.status == CoarseStatus.CANCELLED
    cursor = feed_until(prov, cursor, (second.id, FeedKind.CANCELLED))

    # The portal lists the providers a person may exclude (no capacity or load); a clinician
    # asks for specialist care, excluding nobody. An admin then erases that referral's personal
    # data on the person's request.
    listed = expect(list_portal_providers.sync_detailed(client=portal), 200)
    assert [p.id for p in listed.items] == [provider.id]
    assert not hasattr(listed.items[0], "capacity")
    clinician = referral("Jo", "+447700900789")
    clinician.helping_professional = True
    clinician.exclude_providers = []
    third = expect(
        submit.sync_detailed(client=portal, body=clinician, idempotency_key=str(uuid.uuid4())),
        201,
        Submitted,
    )
    cursor = feed_until(prov, cursor, (third.id, FeedKind.OFFERED))
    expect(admin_erase.sync_detailed(third.id, client=admin), 204)
    cursor = feed_until(prov, cursor, (third.id, FeedKind.ERASED))
    expect(contact.sync_detailed(third.id, client=prov), 410, Problem)

    # The employer's report (months that have not settled yet are left out, so it may be empty).
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    report = expect(
        utilization.sync_detailed(
            client=portal, from_month=month, months=1, group_by=GroupBy.SERVICE_TYPE
        ),
        200,
        Utilization,
    )
    assert report.employer_id == employer.id and report.group_by == GroupBy.SERVICE_TYPE

    # Metrics behind their own bearer token.
    scraper = AuthenticatedClient(
        base_url=url, token=need("EAP_PYTEST_METRICS_TOKEN"), **rec.args()
    )
    text = expect(metrics.sync_detailed(client=scraper), 200, str)
    assert "eap_http_requests_total" in text
    expect(metrics.sync_detailed(client=anon), 401, Problem)

    # Erasure by the portal: the provider is told to delete its copy, and contact reads are
    # gone for good; the coarse status stays readable.
    expect(erase.sync_detailed(ref_id, client=portal, referral_token=ref_token), 204)
    cursor = feed_until(prov, cursor, (ref_id, FeedKind.ERASED))
    gone = expect(contact.sync_detailed(ref_id, client=prov), 410, Problem)
    assert gone.status == 410
    expect(erase.sync_detailed(ref_id, client=portal, referral_token=ref_token), 204)
    coarse = expect(
        read_status.sync_detailed(ref_id, client=portal, referral_token=ref_token),
        200,
        ReferralStatus,
    )
    assert coarse.status == CoarseStatus.CLOSED

    # The directory winds down.
    ended = expect(deactivate_contract.sync_detailed(contract.id, client=admin), 200, Contract)
    assert not ended.active and not ended.in_force
    assert not expect(
        deactivate_provider.sync_detailed(provider.id, client=admin), 200, Provider
    ).active
    assert not expect(
        deactivate_employer.sync_detailed(employer.id, client=admin), 200, Employer
    ).active

    # The auditor: who read this person's contact details, with a proof for one such event.
    erased_events = wait_for_sealed(auditor, LoggedAction.PERSONAL_DATA_ERASE, ref_id)
    erased_event = erased_events.items[0]
    assert erased_event.actor_role == ActorRole.HR_PORTAL
    assert erased_event.occurred_at.tzinfo is not None and erased_event.http_status == 204
    # The refused read came after the erasure: wait for it to be sealed too.
    reads = wait_for_sealed(auditor, LoggedAction.CONTACT_READ, ref_id, at_least=2)
    outcomes = [(e.actor_client_id, e.outcome, e.http_status) for e in reads.items]
    assert outcomes == [
        (provider_client.client_id, AccessOutcome.SUCCESS, 200),
        (provider_client.client_id, AccessOutcome.FAILURE, 410),
    ], "the reveal, then the refused read after erasure, both logged"
    one = reads.items[0]
    proof = expect(inclusion_proof.sync_detailed(one.id, client=auditor), 200, InclusionProof)
    assert proof.event_id == one.id and proof.seq == one.seq and proof.leaf_hash == one.leaf_hash

    # The log's checkpoints extend one another.
    page = expect(list_checkpoints.sync_detailed(client=auditor), 200, CheckpointPage)
    assert page.latest and page.latest.tree_size > 0
    sizes = sorted({c.tree_size for c in page.items if 0 < c.tree_size < page.latest.tree_size})
    assert sizes, "an earlier checkpoint to prove consistency from"
    extends = expect(
        consistency_proof.sync_detailed(
            client=auditor, from_size=sizes[0], to_size=page.latest.tree_size
        ),
        200,
        ConsistencyProof,
    )
    assert extends.older.tree_size == sizes[0]
    assert extends.newer.tree_size == page.latest.tree_size
    assert extends.proof

    # The server re-derives the log and finds it intact.
    report = expect(verify_log.sync_detailed(client=auditor), 200, VerifyResponse)
    assert report.ok and report.root_verified and report.findings_total == 0

    # The console's charts: the sealed log counted by the server per hour, by outcome and by
    # actor. The window holds the whole story, so the counts add up to the log's size.
    window = {
        "from_": dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
        "to": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    }
    by_outcome = expect(
        audit_stats.sync_detailed(
            client=auditor, bucket=AccessStatsBucket.HOUR, by=AccessStatsGroup.OUTCOME, **window
        ),
        200,
        AccessStats,
    )
    assert sum(c.count for c in by_outcome.counts) == by_outcome.tree_size > 0
    denied = sum(c.count for c in by_outcome.counts if c.key == "denied")
    assert denied > 0, "the refusals above are counted"
    refusals = expect(
        audit_stats.sync_detailed(
            client=auditor, by=AccessStatsGroup.ACTOR, outcome=AccessOutcome.DENIED, **window
        ),
        200,
        AccessStats,
    )
    refused_by_actor = sum(c.count for c in refusals.counts)
    # The same refusals, by actor; the log may have grown between the calls, never shrunk.
    assert refused_by_actor >= denied
    if refusals.tree_size == by_outcome.tree_size:
        assert refused_by_actor == denied
    expect(audit_stats.sync_detailed(client=admin, **window), 403, Problem)

    # Exports of the same stretch of the log: up to a moment every event of the story precedes,
    # once a checkpoint covers it, as NDJSON (with its proof) and as CSV.
    until = dt.datetime.now(dt.UTC)
    deadline = time.monotonic() + 20
    while True:
        latest = expect(list_checkpoints.sync_detailed(client=auditor), 200, CheckpointPage).latest
        if latest and latest.issued_at > until + dt.timedelta(seconds=1):
            break
        assert time.monotonic() < deadline, "no checkpoint after the story in 20 s"
        time.sleep(0.5)
    ndjson = export_events.sync_detailed(
        client=auditor, to=until, format_=ExportEventsFormat.NDJSON
    )
    text = expect(ndjson, 200, str)
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert "range" in lines[0] and "proof" in lines[-1], "a contiguous stretch with its proof"
    exported = [line for line in lines if "id" in line]
    assert {(e["action"], e["resource_id"]) for e in exported} >= {
        ("referral.create", ref_id),
        ("referral.accept", ref_id),
        ("contact.read", ref_id),
        ("personal_data.erase", ref_id),
        ("referral.assign", second.id),
        ("personal_data.erase", third.id),
    }
    as_csv = export_events.sync_detailed(client=auditor, to=until, format_=ExportEventsFormat.CSV)
    rows = list(csv.DictReader(io.StringIO(expect(as_csv, 200, str))))
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert [r["id"] for r in rows] == [e["id"] for e in exported], "the same rows, same order"

    # Offline verification with nothing but the files: the export, the checkpoints fetched
    # after it, and the public key. Then one changed byte is caught.
    events_file = tmp_path / "events.ndjson"
    events_file.write_bytes(ndjson.content)
    checkpoints_file = tmp_path / "checkpoints.json"
    checkpoints_file.write_bytes(list_checkpoints.sync_detailed(client=auditor).content)
    key_file = tmp_path / "public-key.json"
    key_file.write_bytes(public_key.sync_detailed(client=anon).content)

    def verify_offline(path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                need("EAP_PYTEST_BIN"),
                "audit",
                "verify",
                "--events",
                str(path),
                "--checkpoints",
                str(checkpoints_file),
                "--public-key",
                str(key_file),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "EAP_DATA_DIR": str(tmp_path)},
        )

    intact = verify_offline(events_file)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert intact.stdout.startswith("OK:") or "\nOK:" in intact.stdout
    tampered = tmp_path / "tampered.ndjson"
    tampered.write_text(
        ndjson.content.decode().replace('"http_status":410', '"http_status":200', 1)
    )
    assert tampered.read_bytes() != ndjson.content, "the export holds the refused read"
    caught = verify_offline(tampered)
    assert caught.returncode == 1, caught.stdout + caught.stderr
    assert "MODIFIED" in caught.stdout

    for c in (anon, admin, portal, prov, auditor, scraper):
        c.get_httpx_client().close()

    missing = rec.missing(documented_operations())
    assert not missing, f"operations the lifecycle never called: {missing}"


def test_a_protected_operation_refuses_a_token_it_did_not_issue(server: Server):
    """The generated client sends the token it is given; a forged one is the documented 401."""
    with AuthenticatedClient(base_url=server.base_url, token="not-a-token") as forged:
        assert expect(list_clients.sync_detailed(client=forged), 401, Problem).status == 401
