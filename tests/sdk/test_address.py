"""``nn_sdk.parse_address``: the one address parser of the SDK, the CLI and the server."""

from __future__ import annotations

import pytest

from nn_sdk import Address, AddressError, NNClient, NNError, parse_address
from nn_sdk._config import parse_base_url
from nn_server.core.addresses import bind_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000", Address("127.0.0.1", 5000)),
        ("192.168.2.102:5000", Address("192.168.2.102", 5000)),
        ("[::1]:8080", Address("::1", 8080)),
        ("::1:8080", Address("::1", 8080)),  # unbracketed: the last colon starts the port
        ("nn.example.org:443", Address("nn.example.org", 443)),
        ("nn_server:5000", Address("nn_server", 5000)),  # container networks use "_"
        ("localaddr:0", Address("localaddr", 0)),  # port 0: any free port (a server's)
        ("http://127.0.0.1:5000", Address("127.0.0.1", 5000, "http")),
        ("https://nn.local:8443/", Address("nn.local", 8443, "https")),
        ("HTTPS://[fe80::1]:1", Address("fe80::1", 1, "https")),
    ],
)
def test_forms(text: str, expected: Address) -> None:
    assert parse_address(text) == expected


def test_netloc_and_url() -> None:
    assert Address("::1", 80).netloc == "[::1]:80"
    assert Address("h", 80).url() == "http://h:80"
    assert Address("h", 80).url("https") == "https://h:80"
    assert Address("h", 80, "http").url("https") == "http://h:80"  # its own scheme wins
    assert parse_address("[::1]:5000").url() == "http://[::1]:5000"


@pytest.mark.parametrize(
    ("text", "part", "value", "message"),
    [
        ("127.0.0.1", "address", "127.0.0.1",
         "address '127.0.0.1' is not host:port (e.g. 127.0.0.1:5000)"),
        (":5000", "address", ":5000", "address ':5000' is not host:port"),
        ("ftp://h:1", "address", "ftp://h:1", "address 'ftp://h:1' is not host:port"),
        ("127.0.0.1:http", "port", "http", "port 'http' is not a number from 0 to 65535"),
        ("127.0.0.1:70000", "port", "70000", "port '70000' is not a number from 0 to 65535"),
        ("h:", "port", "", "port '' is not a number"),
        ("h:５０００", "port", "５０００", "port '５０００' is not a number"),  # ASCII digits only
        ("a b:5000", "host", "a b", "host 'a b' is not an IP address or host name"),
        ("-h:5000", "host", "-h", "host '-h' is not an IP address or host name"),
        ("a..b:5000", "host", "a..b", "host 'a..b'"),
        ("http://h:1/path", "port", "1/path", "port '1/path'"),
    ],
)
def test_errors_name_the_wrong_part(text: str, part: str, value: str, message: str) -> None:
    with pytest.raises(AddressError) as caught:
        parse_address(text)
    assert (caught.value.part, caught.value.value) == (part, value)
    assert str(caught.value).startswith(message)


def test_an_address_error_is_an_nnerror_and_a_valueerror() -> None:
    assert issubclass(AddressError, NNError) and issubclass(AddressError, ValueError)


def test_without_schemes_a_url_is_refused() -> None:
    with pytest.raises(AddressError, match=r"host 'http://h' is not an IP address"):
        parse_address("http://h:1", schemes=())
    with pytest.raises(AddressError, match="is not host:port"):
        parse_address("https://h:1", schemes=("http",))


# -- its users ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["127.0.0.1:0", "[::1]:8080", "localaddr:5000", "h-1.lan:1"])
def test_the_server_reads_addresses_with_it(text: str) -> None:
    address = parse_address(text, schemes=())
    assert bind_address(text) == (address.host, address.port)


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000",
                                  "a b:5000", "http://127.0.0.1:5000"])
def test_the_server_says_what_the_parser_says(text: str) -> None:
    with pytest.raises(AddressError) as expected:
        parse_address(text, schemes=())
    with pytest.raises(ValueError) as caught:
        bind_address(text)
    assert str(caught.value) == str(expected.value)


def test_the_sdk_reads_a_bare_address_with_it() -> None:
    assert str(parse_base_url("[::1]:5000")) == "http://[::1]:5000"
    assert str(NNClient("nn_server:5000").base_url) == "http://nn_server:5000"
    for bad in ("localhost", "host:notaport", "a b:1"):  # a bare host needs its port
        with pytest.raises(ValueError, match=f"not a server address: {bad}"):
            parse_base_url(bad)
