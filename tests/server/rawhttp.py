"""Plain HTTPS requests to the test server (loopback only), for exact status codes and bodies."""

import json
import ssl
import urllib.error
import urllib.request


def request(server, method, path, body=None, token="", content_type="application/json", headers=None, timeout=30):
    """(HTTP status, decoded JSON body or text). token "" uses the admin token, None sends none."""
    status, answer, _ = exchange(server, method, path, body, token, content_type, headers, timeout)
    return status, answer


def exchange(server, method, path, body=None, token="", content_type="application/json", headers=None, timeout=30):
    """(HTTP status, decoded JSON body or text, the response's headers) of one request, as `request` sends it."""
    assert server.url.startswith("https://127.0.0.1:"), server.url
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, method=method)
    if content_type and data is not None:
        req.add_header("Content-Type", content_type)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token or server.token}")
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    context = ssl.create_default_context(cafile=server.ca)
    try:
        with urllib.request.urlopen(req, context=context, timeout=timeout) as response:
            status, raw, received = response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        status, raw, received = exc.code, exc.read(), exc.headers
    try:
        return status, json.loads(raw), received
    except ValueError:
        return status, raw.decode("utf-8", "replace"), received


def created(server, path, obj):
    """POST `obj` to `path`; returns the created object (the test fails on any other answer)."""
    status, body = request(server, "POST", path, obj)
    assert status == 201, body
    return body


def watch_lines(server, path, token="", timeout=30):
    """The decoded lines of a watch response (the server ends it at timeoutSeconds)."""
    req = urllib.request.Request(server.url + path)
    req.add_header("Authorization", f"Bearer {token or server.token}")
    context = ssl.create_default_context(cafile=server.ca)
    with urllib.request.urlopen(req, context=context, timeout=timeout) as response:
        return [json.loads(line) for line in response.read().splitlines() if line.strip()]
