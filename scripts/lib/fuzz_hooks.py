"""schemathesis hooks of scripts/fuzz-api.sh.

schemathesis learns ids from responses (GET /users/me, GET /auth/sessions) and
reuses them in later requests. Deleting, deactivating or demoting the fuzz
user's own account, or revoking its own session, would end the run's login
and turn the rest of the run into 401s, so such cases are skipped. The ids
come from CARREL_FUZZ_OWN_IDS (comma-separated).
"""

import os

import schemathesis

OWN_IDS = {i for i in os.environ.get("CARREL_FUZZ_OWN_IDS", "").split(",") if i}


@schemathesis.hook
def filter_case(context, case):
    if not OWN_IDS:
        return True
    path_parameters = case.path_parameters or {}
    if str(path_parameters.get("id")) in OWN_IDS and case.method.upper() != "GET":
        return False
    return True
