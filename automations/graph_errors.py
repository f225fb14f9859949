"""What a Graph API failure means for the send that caused it."""

from enum import StrEnum

from automations.graph import GraphAPIConnectionError, GraphAPIError, GraphAPITimeoutError


class ErrorClass(StrEnum):
    # The send did not happen; it may succeed later.
    TRANSIENT = "transient"
    # Meta asks this account to slow down: pause it, send later.
    THROTTLED = "throttled"
    # Trying again cannot help (expired token, permission, unknown user, other 4xx).
    TERMINAL = "terminal"
    # Meta answered with an error but the message went out (or had already gone out).
    SENT = "sent"
    # The request was written and no answer came back: it may have gone out.
    UNCERTAIN = "uncertain"


# Rate limits: app, user, page, custom, Instagram and Messenger business-use-case limits.
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80002, 80006, 1996})
TRANSIENT_CODES = frozenset({1, 2})
# (code, subcode) pairs Meta returns although the message was sent, or was sent before.
SENT_ANYWAY = frozenset({(1, 1357046)})
ALREADY_SENT_SUBCODES = frozenset({2534025})  # a private reply was already sent for this comment


def classify_graph_error(exc: GraphAPIError) -> ErrorClass:
    if isinstance(exc, GraphAPITimeoutError):
        return ErrorClass.UNCERTAIN
    if isinstance(exc, GraphAPIConnectionError):
        return ErrorClass.TRANSIENT
    if (exc.code, exc.subcode) in SENT_ANYWAY or exc.subcode in ALREADY_SENT_SUBCODES:
        return ErrorClass.SENT
    if exc.code in THROTTLE_CODES or exc.status == 429:
        return ErrorClass.THROTTLED
    if exc.code in TRANSIENT_CODES or exc.is_transient is True:
        return ErrorClass.TRANSIENT
    if exc.status is not None and exc.status >= 500 and exc.code is None:
        return ErrorClass.TRANSIENT
    # 190 expired token, 10 permission or window, 100 unknown user, 551 unavailable, other 4xx.
    return ErrorClass.TERMINAL
