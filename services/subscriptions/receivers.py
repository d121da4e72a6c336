"""Which addresses a webhook may be sent to: public ones only.

A subscription's URL is chosen by an agency, so without this check the service could be
made to post into the deployment's own network: the broker's management API, a cloud's
metadata endpoint, another service's port. A URL naming such an address is refused when
the subscription is made or changed (subscription.url_problem), and every connection is
checked again when it is opened, against the addresses the name resolves to at that
moment: a name that resolved to a public address yesterday may resolve to a private one
today. The one exception is this machine's loopback, in development only
(SUBSCRIPTIONS_ALLOW_LOCAL_HTTP=1), for a receiver run beside the service.
"""
import ipaddress
import socket

import urllib3
from urllib3.util import connection


class ReceiverRefused(urllib3.exceptions.NewConnectionError):
    """The receiver's name resolves to no address a webhook may be sent to."""


def address_allowed(address, allow_loopback=False):
    """May a webhook connect to `address` (text, or an ip_address)?"""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:   # ::ffff:10.0.0.1 is 10.0.0.1
        ip = mapped
    if ip.is_loopback:
        return allow_loopback
    return ip.is_global and not ip.is_multicast


def literal_address(host):
    """The IP address a URL's host names literally, or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class _Checked:
    """Connects only to an allowed address of the host's, tried in the resolver's order."""

    allow_loopback = False

    def _new_conn(self):
        try:
            found = socket.getaddrinfo(self._dns_host, self.port, connection.allowed_gai_family(), socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise urllib3.exceptions.NameResolutionError(self.host, self, error) from None
        allowed = [info[4][0] for info in found if address_allowed(info[4][0], self.allow_loopback)]
        if not allowed:
            raise ReceiverRefused(self, "the receiver's address is not a public one")
        last = None
        for address in allowed:
            try:
                return connection.create_connection((address, self.port), self.timeout,
                                                    source_address=self.source_address,
                                                    socket_options=self.socket_options)
            except socket.timeout as error:
                last = urllib3.exceptions.ConnectTimeoutError(self, f"connect timeout={self.timeout}")
                last.__cause__ = error
            except OSError as error:
                last = urllib3.exceptions.NewConnectionError(self, f"could not connect: {type(error).__name__}")
        raise last


def pool_classes(allow_loopback):
    """(HTTPConnectionPool, HTTPSConnectionPool) subclasses whose connections are checked.
    TLS still verifies the certificate against the URL's host name, not the address."""

    class CheckedHTTPConnection(_Checked, urllib3.connection.HTTPConnection):
        pass

    class CheckedHTTPSConnection(_Checked, urllib3.connection.HTTPSConnection):
        pass

    class CheckedHTTPPool(urllib3.HTTPConnectionPool):
        ConnectionCls = CheckedHTTPConnection

    class CheckedHTTPSPool(urllib3.HTTPSConnectionPool):
        ConnectionCls = CheckedHTTPSConnection

    CheckedHTTPConnection.allow_loopback = CheckedHTTPSConnection.allow_loopback = allow_loopback
    return CheckedHTTPPool, CheckedHTTPSPool
