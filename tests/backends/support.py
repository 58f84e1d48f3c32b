"""Helpers shared by the object-store tests, the contract rigs and ``bench/object_stores.py``.

- ``FAST``: a retry policy that gives up in well under a second (fault tests).
- moto's server checks AWS keys and SigV4 signatures once IAM authentication is switched on
  with ``POST /moto-api/reset-auth`` (body: how many more requests go unchecked; ``0`` checks
  every request from now on, ``inf`` none). :func:`moto_iam_keys` creates an IAM user allowed
  ``s3:*`` and returns its key pair; :func:`moto_auth` switches checking on for a block.
- :class:`TokenServer`: a loopback OAuth2 token endpoint for a service account's ``token_uri``,
  so ``GCP_CREDENTIALS`` (a service-account info dict) is used for real: google-auth signs a
  JWT with the private key, posts it here, and sends the access token it gets to the emulator.
- :func:`service_account_info`: such a dict with a freshly generated RSA key (needs the
  ``cryptography`` package; callers skip with the reason when it is missing).
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prefect_storage.retry import RetryPolicy

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, attempt_timeout=5, deadline=10)
"""Three attempts, ~30 ms apart: retries happen, and a failing test still ends at once."""

S3_ALL_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
)


# -- moto: real credential checks ------------------------------------------------------------
def moto_set_auth(endpoint_url: str, unchecked_requests: str) -> None:
    """``POST /moto-api/reset-auth``: from now on, check all but ``unchecked_requests``."""
    target = urlsplit(endpoint_url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    try:
        connection.request("POST", "/moto-api/reset-auth", body=unchecked_requests.encode())
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"moto reset-auth answered HTTP {response.status}")


def moto_iam_keys(endpoint_url: str) -> tuple[str, str]:
    """A new IAM user allowed ``s3:*``; returns its (access key id, secret access key).

    Call it while authentication is off (moto's IAM API needs keys of its own otherwise).
    """
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    user = f"storage-{uuid.uuid4().hex[:12]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="s3-all", PolicyDocument=S3_ALL_POLICY)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


@contextmanager
def moto_auth(endpoint_url: str) -> Iterator[None]:
    """moto checks every request's key and signature within the block."""
    moto_set_auth(endpoint_url, "0")
    try:
        yield
    finally:
        moto_set_auth(endpoint_url, "inf")


# -- GCP: a service account whose credentials are really used ---------------------------------
class TokenServer:
    """A loopback OAuth2 token endpoint: answers a JWT-bearer grant with ``access_token``.

    ``grants`` records each request's form fields; ``refuse = True`` answers 400
    ``invalid_grant`` (as Google does for a revoked key).
    """

    def __init__(self, access_token: str | None = None) -> None:
        self.access_token = access_token or f"ya29.test-{uuid.uuid4().hex}"
        self.grants: list[dict[str, list[str]]] = []
        self.refuse = False
        self._httpd: ThreadingHTTPServer | None = None

    def start(self) -> TokenServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                server.grants.append(parse_qs(self.rfile.read(length).decode()))
                if server.refuse:
                    status, body = 400, {"error": "invalid_grant", "error_description": "no"}
                else:
                    status = 200
                    body = {
                        "access_token": server.access_token,
                        "token_type": "Bearer",
                        "expires_in": 3600,
                    }
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    @property
    def token_uri(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/token"

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def service_account_info(token_uri: str, project_id: str = "test") -> dict[str, Any]:
    """A service-account key file's contents with a new 2048-bit RSA private key.

    Raises ``ImportError`` when ``cryptography`` is not installed.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": f"flows@{project_id}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }


def private_key_fragments(info: dict[str, Any]) -> list[str]:
    """Distinctive pieces of a service account's private key (whole PEM lines of base64)."""
    lines = [line for line in info["private_key"].splitlines() if "-----" not in line]
    return [lines[1], lines[len(lines) // 2], lines[-2]]
