"""AWS's side of an SNS HTTPS subscription, on a local TLS server: it serves the signing
certificate at the SigningCertURL and answers the SubscribeURL, and it signs messages the way SNS
does (the string to sign as AWS documents it, RSA PKCS#1 v1.5 with SHA1 or SHA256).

Tests trust its TLS certificate through REQUESTS_CA_BUNDLE and allow its host through SNS_CERT_HOSTS,
so the portal fetches and verifies exactly as it would from AWS. Steer it with `certificate_status`
and `confirm_status`; read `requests` for the paths it was asked for."""

import base64
import ipaddress
import json
import ssl
import threading
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

TOPIC = "arn:aws:sns:eu-west-1:123456789012:production-alarms"
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


@cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    """One RSA key per name for the whole run (making one costs a tenth of a second)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def self_signed(key: rsa.RSAPrivateKey, common_name: str, *, ip: str | None = None) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
    )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        ).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256())


def string_to_sign(message: dict) -> bytes:
    """What SNS signs: for each field of the type's list, in that order and when present, its name
    and its value on lines of their own."""
    if message["Type"] == "Notification":
        fields = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        fields = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{f}\n{message[f]}\n" for f in fields if message.get(f) is not None).encode()


def alarm(name: str, state: str = "ALARM", *, changed_at: datetime, period=60, periods=3, **extra) -> str:
    """CloudWatch's alarm notification, as SNS carries it in Message."""
    body = {
        "AlarmName": name,
        "AlarmDescription": "Checkout answers 5xx",
        "AWSAccountId": "123456789012",
        "NewStateValue": state,
        "NewStateReason": f"Threshold Crossed: {periods} datapoints were greater than the threshold (1.0).",
        "StateChangeTime": changed_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
        "Region": "EU (Ireland)",
        "AlarmArn": f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}",
        "OldStateValue": "OK" if state == "ALARM" else "ALARM",
        "Trigger": {
            "MetricName": "HTTPCode_Target_5XX_Count",
            "Namespace": "AWS/ApplicationELB",
            "Statistic": "SUM",
            "Period": period,
            "EvaluationPeriods": periods,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 1.0,
        },
        **extra,
    }
    return json.dumps(body)


class FakeSNS:
    """Serves on https://127.0.0.1:<port> until `close`."""

    def __init__(self, tmp_path):
        self.key = rsa_key("sns-signing")
        self.certificate = self_signed(self.key, "sns.amazonaws.com")
        self.certificate_status = 200
        self.confirm_status = 200
        self.requests: list[str] = []
        tls_key = rsa_key("sns-tls")
        self.ca_bundle = tmp_path / "sns-tls.pem"
        self.ca_bundle.write_bytes(
            self_signed(tls_key, "127.0.0.1", ip="127.0.0.1").public_bytes(serialization.Encoding.PEM)
        )
        key_file = tmp_path / "sns-tls.key"
        key_file.write_bytes(
            tls_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake.requests.append(self.path)
                if self.path.endswith(".pem"):
                    status = fake.certificate_status
                    body = fake.certificate.public_bytes(serialization.Encoding.PEM)
                elif "Action=ConfirmSubscription" in self.path:
                    status = fake.confirm_status
                    body = b"<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>"
                    body += TOPIC.encode() + b":1</SubscriptionArn></ConfirmSubscriptionResult>"
                    body += b"</ConfirmSubscriptionResponse>"
                else:
                    status, body = 404, b"not found"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_bundle, key_file)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_port}"
        self.certificate_url = f"{self.url}/SimpleNotificationService-{uuid.uuid4().hex}.pem"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def certificate_fetches(self) -> int:
        return sum(path.endswith(".pem") for path in self.requests)

    def message(
        self,
        kind: str = "Notification",
        *,
        message: str = "",
        version: str = "1",
        timestamp: datetime,
        key: rsa.RSAPrivateKey | None = None,
        topic: str = TOPIC,
        **fields,
    ) -> dict:
        """A message as SNS posts it from `topic`, signed with this server's key (or `key`)."""
        message_id = str(uuid.uuid4())
        body = {
            "Type": kind,
            "MessageId": message_id,
            "TopicArn": topic,
            "Message": message,
            "Timestamp": timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "SignatureVersion": version,
            "SigningCertURL": self.certificate_url,
        }
        if kind == "Notification":
            body["Subject"] = "ALARM: checkout-5xx in EU (Ireland)"
            body["UnsubscribeURL"] = f"{self.url}/?Action=Unsubscribe&SubscriptionArn={topic}:1"
        else:
            body["Token"] = uuid.uuid4().hex * 4
            body["SubscribeURL"] = (
                f"{self.url}/?Action=ConfirmSubscription&TopicArn={topic}&Token={body['Token']}"
            )
        body.update(fields)
        body["Signature"] = self.sign(body, key=key)
        return body

    def sign(self, body: dict, *, key: rsa.RSAPrivateKey | None = None) -> str:
        signer = key or self.key
        signed = signer.sign(string_to_sign(body), padding.PKCS1v15(), HASHES[body["SignatureVersion"]]())
        return base64.b64encode(signed).decode()
