"""``vditui serve --listen``: the forms it takes (the refused ones are tested through the real
command in tests/lab/test_serve.py, with their messages)."""

from __future__ import annotations

import argparse

import pytest

from vditui.commands.serve import DEFAULT_LISTEN, parse_listen, show


@pytest.mark.parametrize(("text", "want"), [
    (DEFAULT_LISTEN, ("127.0.0.1", 9464)),
    ("0.0.0.0:9464", ("0.0.0.0", 9464)),
    ("[::1]:9464", ("::1", 9464)),
    ("[::]:0", ("::", 0)),
    ("localhost:9100", ("localhost", 9100)),
    ("mon-01.example.com:65535", ("mon-01.example.com", 65535)),
    (" 127.0.0.1:9464 ", ("127.0.0.1", 9464)),
])
def test_listen_forms(text, want):
    assert parse_listen(text) == want
    assert parse_listen(show(*want)) == want  # what the startup line shows reads back


@pytest.mark.parametrize("text", ["", "9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http",
                                  "[127.0.0.1]:9464x", "::1:9464", "[]:9464", "a b:9464",
                                  "-bad.example:9464", "127.0.0.1:123456"])
def test_refused_forms(text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected|above|no host|neither|IPv6"):
        parse_listen(text)
