"""Stand-ins for the outside world at its boundary: small HTTP servers that answer like the real APIs."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


def answer_json(handler, payload, status=200) -> None:
    """A JSON answer from one of the stand-ins' request handlers."""
    body = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class FakeSlack:
    """Answers Slack's Web API (chat.postMessage) the way Slack documents it, and keeps the posts."""

    def __init__(self):
        self.posts: list[dict] = []
        self.reply = {"ok": True, "channel": "C0123", "ts": "1700000000.000100"}
        self.status = 200
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    payload = json.loads(raw)
                else:
                    payload = {k: v[0] for k, v in parse_qs(raw).items()}
                fake.posts.append(
                    {
                        "method": self.path.rsplit("/", 1)[-1],
                        "auth": self.headers.get("Authorization"),
                        **payload,
                    }
                )
                answer_json(self, fake.reply, fake.status)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class FakeIdentityProvider:
    """An OpenID Connect provider: JWKS, token and userinfo endpoints, ID tokens signed with RS256."""

    CLIENT_ID = "greenlight"
    CLIENT_SECRET = "sso-test-secret"

    def __init__(self):
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.claims: dict = {}
        self.amr: list[str] = ["pwd"]
        self.nonce = ""
        self.token_requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.startswith("/jwks"):
                    answer_json(self, {"keys": [fake.jwk()]})
                elif self.path.startswith("/userinfo"):
                    answer_json(self, fake.claims)
                else:
                    answer_json(self, {"error": "not_found"}, status=404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                fake.token_requests.append(form)
                answer_json(
                    self, {"id_token": fake.id_token(), "access_token": "at-1", "token_type": "Bearer"}
                )

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def jwk(self) -> dict:
        from jwt.algorithms import RSAAlgorithm

        return {**json.loads(RSAAlgorithm.to_jwk(self.key.public_key())), "kid": "test-key", "alg": "RS256"}

    def id_token(self) -> str:
        import time

        import jwt

        now = int(time.time())
        payload = {
            "iss": self.url,
            "aud": self.CLIENT_ID,
            "sub": self.claims.get("sub") or self.claims.get("email", "someone"),
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonce,
            "amr": self.amr,
        }
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": "test-key"})

    def settings(self) -> dict:
        return {
            "OIDC_ENABLED": True,
            "OIDC_RP_CLIENT_ID": self.CLIENT_ID,
            "OIDC_RP_CLIENT_SECRET": self.CLIENT_SECRET,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.url}/authorize",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.url}/token",
            "OIDC_OP_USER_ENDPOINT": f"{self.url}/userinfo",
            "OIDC_OP_JWKS_ENDPOINT": f"{self.url}/jwks",
            "OIDC_RP_SIGN_ALGO": "RS256",
            "OIDC_ROLE_GROUPS": {"release_manager": "gl-release", "sre": "gl-sre", "developer": "gl-eng"},
        }

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class _Served:
    """A stand-in served on a free local port from a thread, until `close`."""

    def _serve(self, handler, path: str = "") -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeColour(_Served):
    """One colour of a blue-green service at its own address: answers GET with `status` and
    `body`, and counts the requests."""

    def __init__(self):
        self.status, self.body, self.hits = 200, "ok", 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake.hits += 1
                body = fake.body.encode()
                self.send_response(fake.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._serve(Handler)


class FakePipeline(_Served):
    """A deploy pipeline's webhook: keeps the JSON it is sent (`received`), and each request's
    body and headers as they came (`requests`), answers `status`."""

    def __init__(self):
        self.received: list[dict] = []
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        self.status = 202
        self.location = ""  # sent as Location when set (a redirect)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.requests.append((body, dict(self.headers)))
                fake.received.append(json.loads(body))
                self.send_response(fake.status)
                if fake.location:
                    self.send_header("Location", fake.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self._serve(Handler, "/deploy")


class FakeMail:
    """A mail server (SMTP, as RFC 5321 has it, without extensions): keeps each message it accepts
    as {"to": [addresses], "subject": ...}."""

    def __init__(self):
        import email
        import socketserver
        from email.header import decode_header, make_header

        self.messages: list[dict] = []
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def say(self, line: str) -> None:
                self.wfile.write(f"{line}\r\n".encode())

            def handle(self):
                self.say("220 mail.example.com ESMTP")
                recipients = []
                while line := self.rfile.readline():
                    command = line.decode(errors="replace").strip()
                    verb = command[:4].upper()
                    if verb in ("HELO", "EHLO"):
                        self.say("250 mail.example.com")
                    elif verb == "MAIL":
                        recipients = []
                        self.say("250 OK")
                    elif verb == "RCPT":
                        recipients.append(command.partition(":")[2].strip().strip("<>"))
                        self.say("250 OK")
                    elif verb == "DATA":
                        self.say("354 End data with <CR><LF>.<CR><LF>")
                        lines = []
                        while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                            lines.append(line[1:] if line.startswith(b"..") else line)
                        message = email.message_from_bytes(b"".join(lines))
                        subject = str(make_header(decode_header(message["Subject"] or "")))
                        fake.messages.append({"to": recipients, "subject": subject})
                        self.say("250 OK")
                    elif verb == "QUIT":
                        self.say("221 Bye")
                        return
                    else:  # RSET, NOOP
                        self.say("250 OK")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"smtp://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakePagerDuty(_Served):
    """PagerDuty's Events API v2 (POST /v2/enqueue): keeps each event, answers 202 as PagerDuty
    does, or `status` when told to fail."""

    def __init__(self):
        self.events: list[dict] = []
        self.status = 202
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if fake.status == 202:
                    fake.events.append(event)
                answer_json(self, {"status": "success", "dedup_key": event.get("dedup_key")}, fake.status)

            def log_message(self, *args):
                pass

        self._serve(Handler, "/v2/enqueue")
