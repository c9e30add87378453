"""A stand-in kube-apiserver for the lab's post-install scenarios: TLS on a port,
``GET /version`` answers like Kubernetes, everything else 403.

    python3 -I tlsapi.py CERT KEY PORT GIT_VERSION

Standard library only: it runs in a lab node's network namespace with the host's
system Python, started by the lab's keeper (acpcheck/lab/lb.py).
"""

import http.server
import json
import ssl
import sys


def main(cert: str, key: str, port: int, version: str) -> None:
    body = json.dumps({"major": "1", "minor": version.split(".")[1] if "." in version else "", "gitVersion": version}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/version":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(403)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
