"""Schemathesis hooks for .ci/fuzz (loaded through SCHEMATHESIS_HOOKS).

`Idempotency-Key` is documented as unique per submission, a rule JSON Schema cannot state. The
generator draws keys from a small space and reuses them with other bodies, which the server must
answer with 422 (IETF httpapi idempotency-key draft: a key reused with a different payload).
A key that matches the documented pattern is therefore made unique before sending, keeping its
form (bare or quoted); a key that breaks the pattern is sent as generated, so negative tests
are unchanged. No check is altered.
"""

import re
import uuid

import schemathesis

KEY = re.compile(r'^([!#-\[\]-~]{1,255}|"[!#-\[\]-~]{1,255}")$')


def _targets_a_header(case):
    """A coverage case about one header (missing, or a crafted value): sent exactly as made."""
    meta = getattr(case, "meta", None)
    data = getattr(getattr(meta, "phase", None), "data", None)
    location = getattr(data, "parameter_location", None)
    return location is not None and str(getattr(location, "value", location)).lower() == "header"


@schemathesis.hook
def before_call(context, case, kwargs):
    if _targets_a_header(case) or not case.headers:
        return
    for name in list(case.headers):
        if name.lower() != "idempotency-key":
            continue
        value = case.headers[name]
        if isinstance(value, str) and KEY.fullmatch(value):
            fresh = uuid.uuid4().hex
            case.headers[name] = f'"{fresh}"' if value.startswith('"') else fresh
