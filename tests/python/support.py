"""Helpers for the tests that drive the service through the generated Python client.

`.ci/python-client` generates the client (package `eap_referrals_client`), starts the servers on
127.0.0.1 and passes their addresses and the bootstrap admin credentials in `EAP_PYTEST_*`
variables. Everything here goes through the generated client's functions.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus

import httpx
import pytest

from eap_referrals_client import AuthenticatedClient
from eap_referrals_client.api.admin import (
    create_client,
    create_contract,
    create_employer,
    create_provider,
)
from eap_referrals_client.api.auth import token
from eap_referrals_client.api.referrals import submit
from eap_referrals_client.models import (
    ClientWithSecret,
    Contact,
    ContractInput,
    Employer,
    EmployerInput,
    GrantType,
    Modality,
    NewHrPortalClient,
    NewHrPortalClientRole,
    NewProviderClient,
    NewProviderClientRole,
    NewReferral,
    Provider,
    ProviderInput,
    Service,
    Submitted,
    TokenForm,
    TokenResponse,
    Urgency,
)
from eap_referrals_client.types import Response

# Long polls wait up to 60 s on the server; the client must wait longer than the poll.
LONG = httpx.Timeout(75.0)


def need(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these tests with .ci/python-client")
    return value


@dataclass(frozen=True)
class Creds:
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class Server:
    base_url: str
    admin: Creds


def load_server(url_var: str, admin_var: str) -> Server:
    base_url = need(url_var)
    assert base_url.startswith("http://127.0.0.1:"), "tests talk to loopback only"
    admin = json.loads(Path(need(admin_var)).read_text())
    return Server(base_url, Creds(admin["client_id"], admin["client_secret"]))


def expect(resp: Response, status: int, parsed_type: type | None = None):
    """Asserts the status and, when given, the generated type of the parsed body; returns it.

    A mismatch shows the problem+json title and detail only: bodies of successful answers can
    hold contact data, which must not reach a CI log.
    """
    if resp.status_code != status:
        shown = ""
        if resp.headers.get("content-type", "").startswith("application/problem+json"):
            body = json.loads(resp.content)
            shown = f": {body.get('title')}: {body.get('detail')}"
        raise AssertionError(f"expected {status}, got {int(resp.status_code)}{shown}")
    if parsed_type is not None:
        assert isinstance(resp.parsed, parsed_type), type(resp.parsed)
    return resp.parsed


def basic_auth(creds: Creds, **client_args) -> AuthenticatedClient:
    """A client for the token endpoint with HTTP Basic client authentication (the document's
    `client_basic` scheme): RFC 6749 §2.3.1 form-encodes the id and secret, then base64."""
    pair = f"{quote_plus(creds.client_id)}:{quote_plus(creds.client_secret)}"
    return AuthenticatedClient(
        token=base64.b64encode(pair.encode()).decode(), prefix="Basic", **client_args
    )


def get_token(base_url: str, creds: Creds, **client_args) -> TokenResponse:
    """A client-credentials token."""
    form = TokenForm(grant_type=GrantType.CLIENT_CREDENTIALS)
    with basic_auth(creds, base_url=base_url, **client_args) as c:
        return expect(token.sync_detailed(client=c, body=form), 200, TokenResponse)


def authed(base_url: str, creds: Creds, **client_args) -> AuthenticatedClient:
    return AuthenticatedClient(
        base_url=base_url,
        token=get_token(base_url, creds).access_token,
        timeout=LONG,
        **client_args,
    )


def creds_of(made: ClientWithSecret) -> Creds:
    return Creds(made.client_id, made.client_secret)


@dataclass(frozen=True)
class Tenancy:
    """An employer with a portal, one contracted provider with its own system's client."""

    employer_id: str
    provider_id: str
    portal: Creds
    provider: Creds


def make_tenancy(server: Server, label: str, capacity: int = 50) -> Tenancy:
    with authed(server.base_url, server.admin) as admin:
        employer = expect(
            create_employer.sync_detailed(
                client=admin, body=EmployerInput(name=f"{label} employer")
            ),
            201,
            Employer,
        )
        provider = expect(
            create_provider.sync_detailed(
                client=admin,
                body=ProviderInput(
                    name=f"{label} provider",
                    services=[Service.COUNSELLING],
                    languages=["en"],
                    regions=["GB"],
                    modalities=[Modality.VIDEO, Modality.PHONE],
                    capacity=capacity,
                ),
            ),
            201,
            Provider,
        )
        expect(
            create_contract.sync_detailed(
                client=admin,
                body=ContractInput(employer_id=employer.id, provider_id=provider.id, priority=1),
            ),
            201,
        )
        portal = expect(
            create_client.sync_detailed(
                client=admin,
                body=NewHrPortalClient(
                    name=f"{label} portal",
                    role=NewHrPortalClientRole.HR_PORTAL,
                    employer_id=employer.id,
                ),
            ),
            201,
            ClientWithSecret,
        )
        system = expect(
            create_client.sync_detailed(
                client=admin,
                body=NewProviderClient(
                    name=f"{label} case system",
                    role=NewProviderClientRole.PROVIDER,
                    provider_id=provider.id,
                ),
            ),
            201,
            ClientWithSecret,
        )
    return Tenancy(employer.id, provider.id, creds_of(portal), creds_of(system))


# Made-up contact data (Ofcom's drama range, example.org): tests check it reaches the right
# places and never the logs.
def referral(name: str = "Sam", phone: str = "+447700900123") -> NewReferral:
    return NewReferral(
        service_type=Service.COUNSELLING,
        urgency=Urgency.ROUTINE,
        modality=Modality.VIDEO,
        language="en",
        region="GB-ENG",
        contact=Contact(preferred_name=name, phone=phone, voicemail_consent=True),
        note="Evenings are best.",
    )


def submit_referral(portal: AuthenticatedClient, body: NewReferral) -> Submitted:
    return expect(
        submit.sync_detailed(client=portal, body=body, idempotency_key=str(uuid.uuid4())),
        201,
        Submitted,
    )
