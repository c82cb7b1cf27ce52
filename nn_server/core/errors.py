"""The kinds of error the domain raises, for ``nn_server.web.errors`` to answer with.

The layers below ``web`` know nothing of HTTP: they raise subclasses of these kinds (an
unreadable image is ``Invalid``, an unknown version ``Missing``, a training already running
a ``Conflict``, weights not loaded yet ``Unavailable``), with a message written for the
user, and the web layer maps each kind to its status in one table.
"""


class DomainError(Exception):
    """A request the domain cannot carry out, for a reason the user can act on."""


class Invalid(DomainError, ValueError):
    """The input is wrong (HTTP 400)."""


class Unsupported(Invalid):
    """The input is of a kind this server does not read (HTTP 415)."""


class Missing(DomainError, LookupError):
    """What the request names does not exist (HTTP 404)."""


class Conflict(DomainError):
    """The request clashes with the state things are in (HTTP 409)."""


class Unavailable(DomainError):
    """Not possible now, but soon or once something else is back (HTTP 503)."""
