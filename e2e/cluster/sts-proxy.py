"""STS in front of moto for the e2e control plane.

Rampart verifies IAM tokens by sending their presigned GetCallerIdentity URL to STS. moto reads
the caller only from the Authorization header, so this proxy copies a presigned URL's
X-Amz-Credential into that header and forwards the request unchanged otherwise.

    python3 sts-proxy.py LISTEN_PORT MOTO_URL
"""
import http.server
import sys
import urllib.error
import urllib.parse
import urllib.request

MOTO = sys.argv[2].rstrip("/")


class Proxy(http.server.BaseHTTPRequestHandler):
    def forward(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        query = urllib.parse.urlsplit(self.path).query
        if "authorization" not in (k.lower() for k in headers):
            params = dict(urllib.parse.parse_qsl(query))
            credential = next((v for k, v in params.items() if k.lower() == "x-amz-credential"), "")
            headers["Authorization"] = (
                f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host;x-k8s-aws-id, Signature=0"
            )
        request = urllib.request.Request(f"{MOTO}/?{query}", data=body, headers=headers, method=self.command)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, payload, kind = response.status, response.read(), response.headers.get("content-type")
        except urllib.error.HTTPError as error:
            status, payload, kind = error.code, error.read(), error.headers.get("content-type")
        self.send_response(status)
        self.send_header("content-type", kind or "text/xml")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = forward

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Proxy).serve_forever()
