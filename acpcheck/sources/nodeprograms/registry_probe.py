# acpcheck registry probe: run on a node with `python3 -S -c`, its request as JSON on stdin.
# It asks an image registry's API what a node would: is /v2/ there over TLS (the node's own
# trust, or the CA it is given), does /v2/ want credentials and take the given ones, and is each
# image's manifest there (HEAD requests with the manifest media types: nothing is pulled).
# Output: one line per step, "acpcheck-reg <json>". It never prints the password, a token, a
# response body or an Authorization header; the password arrives on stdin only.
import base64
import json
import socket
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


class CredentialsStayHome(urllib.request.HTTPRedirectHandler):
    """Follows redirects (blobs and manifests may move to storage), but the Authorization header
    only to the same host over https: urllib would send it anywhere, plain http included."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        moved = urllib.request.HTTPRedirectHandler.redirect_request(self, req, fp, code, msg, headers, newurl)
        if moved is not None:
            old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
            if new.scheme != "https" or new.netloc != old.netloc:
                moved.remove_header("Authorization")
        return moved


def say(**fields):
    sys.stdout.write("acpcheck-reg " + json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


#: ssl.SSLCertVerificationError (Python 3.7+); older Pythons report a plain SSLError.
VERIFY_ERROR = getattr(ssl, "SSLCertVerificationError", None)


def failure(error):
    """(outcome, detail, verify code) for a request that got no HTTP answer."""
    reason = getattr(error, "reason", error)
    if VERIFY_ERROR is not None and isinstance(reason, VERIFY_ERROR):
        return "verify", str(reason.verify_message or reason), reason.verify_code
    if isinstance(reason, ssl.SSLError):
        return "tls", str(reason), None
    if isinstance(reason, ConnectionRefusedError):
        return "refused", "connection refused", None
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timeout", "no answer", None
    if isinstance(reason, socket.gaierror):
        return "unresolved", str(reason), None
    if isinstance(reason, OSError):
        return "unreachable", reason.strerror or str(reason), None
    return "error", type(reason).__name__ + ": " + str(reason)[:200], None


class Probe:
    def __init__(self, request):
        self.address = request["address"]
        self.timeout = float(request.get("timeout", 5))
        self.context = ssl.create_default_context()
        if request.get("ca"):
            self.context.load_verify_locations(cadata=request["ca"])
        self.user = request.get("username")
        self.password = request.get("password")
        self.challenge = ("", {})  # type: tuple[str, dict[str, str]]
        self.tokens = {}  # type: dict[str, tuple[int, str]]
        self.refusal = ""  # why the credential was not sent
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self.context), CredentialsStayHome()
        )

    def call(self, path_or_url, method="GET", authorization=None, accept=None):
        url = path_or_url if "://" in path_or_url else "https://" + self.address + path_or_url
        headers = {"User-Agent": "acpcheck-registry-probe"}
        if authorization:
            headers["Authorization"] = authorization
        if accept:
            headers["Accept"] = accept
        request = urllib.request.Request(url, headers=headers, method=method)
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return response.status, response.headers, response.read(1 << 20) if method == "GET" else b""
        except urllib.error.HTTPError as error:
            return error.code, error.headers, b""

    def basic(self):
        pair = (self.user + ":" + self.password).encode()
        return "Basic " + base64.b64encode(pair).decode()

    def authorization(self, scope=None):
        """What to send as Authorization under the registry's challenge, or None."""
        scheme, params = self.challenge
        if not self.user or self.password is None:
            return None
        if scheme == "basic":
            return self.basic()
        if scheme == "bearer" and params.get("realm"):
            if not params["realm"].startswith("https://"):
                self.refusal = "the token service is not https: the credential is not sent there"
                return None
            key = scope or ""
            if key not in self.tokens:
                query = {"service": params.get("service", "")}
                if scope:
                    query["scope"] = scope
                url = params["realm"] + ("&" if "?" in params["realm"] else "?") + urllib.parse.urlencode(query)
                status, _, body = self.call(url, authorization=self.basic())
                token = ""
                if status == 200:
                    try:
                        answer = json.loads(body.decode())
                        token = answer.get("token") or answer.get("access_token") or ""
                    except ValueError:
                        token = ""
                self.tokens[key] = (status, token)
            status, token = self.tokens[key]
            return "Bearer " + token if token else None
        return None

    def run(self, images):
        try:
            status, headers, _ = self.call("/v2/")
        except Exception as error:  # noqa: BLE001 - every failure is reported, never raised
            outcome, detail, code = failure(error)
            fields = {"step": "tls", "outcome": outcome, "detail": detail, "code": code}
            if outcome == "verify":
                fields["certificate"] = self.peer_certificate()
            say(**fields)
            return
        say(step="tls", outcome="ok")
        self.challenge = parse_challenge(headers.get("WWW-Authenticate", ""))
        say(step="anonymous", status=status, scheme=self.challenge[0])
        if self.user and self.password is not None:
            try:
                authorization = self.authorization()
                token_status = self.tokens.get("", (None, ""))[0]
                if authorization is None:
                    detail = self.refusal or "no usable challenge"
                    say(step="login", status=None, tokenStatus=token_status, detail=detail)
                else:
                    status, _, _ = self.call("/v2/", authorization=authorization)
                    say(step="login", status=status, tokenStatus=token_status)
            except Exception as error:  # noqa: BLE001
                outcome, detail, _ = failure(error)
                say(step="login", status=None, detail=outcome + ": " + detail)
        for image in images:
            repository, reference = image["repository"], image["reference"]
            try:
                authorization = self.authorization("repository:" + repository + ":pull")
                path = "/v2/" + repository + "/manifests/" + reference
                status, headers, _ = self.call(path, "HEAD", authorization, ACCEPT)
                if status == 405:  # a registry without HEAD on manifests
                    status, headers, _ = self.call(path, "GET", authorization, ACCEPT)
                say(
                    step="image",
                    image=image["name"],
                    status=status,
                    mediaType=headers.get("Content-Type", ""),
                    digest=headers.get("Docker-Content-Digest", ""),
                )
            except Exception as error:  # noqa: BLE001
                outcome, detail, _ = failure(error)
                say(step="image", image=image["name"], status=None, detail=outcome + ": " + detail)

    def peer_certificate(self):
        """The certificate the registry served (base64 DER), fetched unverified to say what is wrong."""
        host, port = self.address, ""
        if host.startswith("["):
            host, _, port = host[1:].partition("]")
            port = port.lstrip(":")
        elif host.count(":") == 1:
            host, _, port = host.partition(":")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection((host, int(port or 443)), timeout=self.timeout) as raw:
                with context.wrap_socket(raw, server_hostname=host) as tls:
                    return base64.b64encode(tls.getpeercert(binary_form=True) or b"").decode()
        except Exception:  # noqa: BLE001
            return ""


def parse_challenge(header):
    """('basic'|'bearer'|'', {param: value}) of a WWW-Authenticate header."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for part in rest.split(","):
        key, _, value = part.strip().partition("=")
        if key:
            params[key.strip().lower()] = value.strip().strip('"')
    return scheme.lower(), params


def main():
    request = json.loads(sys.stdin.read())
    Probe(request).run(request.get("images", []))
    say(step="done")


main()
