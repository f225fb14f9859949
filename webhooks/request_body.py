"""The raw bytes of a webhook request, however the server hands them over.

Django reads a request body only up to its Content-Length. A body sent with `Transfer-Encoding: chunked`
has none, so Django reads it as empty and the signature check would fail on a correctly signed
delivery. A WSGI server that decodes chunked bodies says so with `wsgi.input_terminated` (gunicorn
does): the body is then read from `wsgi.input` to its end. Where the server does not (Django's
runserver, wsgiref), the body cannot be read, and the answer is 411 rather than a misleading 403.
"""

from django.http import HttpRequest


class BodyTooLarge(Exception):
    pass


class BodyLengthRequired(Exception):
    """A chunked body on a server that does not decode it."""


class BodyLengthInvalid(Exception):
    pass


LENGTH_REQUIRED_MESSAGE = (
    "Length Required: send the body with a Content-Length header. This server cannot read a chunked "
    "body (Transfer-Encoding: chunked); a server that can (gunicorn, as Instabot deploys) reads both."
)


def request_body(request: HttpRequest, *, limit: int) -> bytes:
    """The request's body, at most `limit` bytes, or one of this module's exceptions saying why not."""
    raw_length = request.META.get("CONTENT_LENGTH")
    if not raw_length and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        if not request.META.get("wsgi.input_terminated"):
            raise BodyLengthRequired(LENGTH_REQUIRED_MESSAGE)
        body = request.META["wsgi.input"].read(limit + 1)
    else:
        try:
            declared_length = int(raw_length or 0)
        except ValueError:
            raise BodyLengthInvalid("Invalid Content-Length.") from None
        if declared_length > limit:
            raise BodyTooLarge(f"Body larger than {limit} bytes.")
        body = request.read(limit + 1)
    if len(body) > limit:
        raise BodyTooLarge(f"Body larger than {limit} bytes.")
    return body
