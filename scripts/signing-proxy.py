#!/usr/bin/env python3
"""A reverse proxy for fuzzing a locked TYDFS server: it signs every request it forwards the way
the CLI does (TYDFS-HMAC-SHA256 with the cluster secret, which may use every route), and on a
datakeeper's chunk routes adds a chunk token the master would have issued (to each chunk with a
well-formed id that a chunk batch lists, too), so the fuzzer's requests reach the handlers
instead of stopping at the front door.

Usage: signing-proxy.py LISTEN_PORT TARGET_HOST:PORT SECRET_FILE [DATAKEEPER_ID]
(with DATAKEEPER_ID, the target is that datakeeper and chunk requests get tokens)."""
import base64, hashlib, hmac, http.client, re, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

listen_port, target, secret_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
datakeeper = sys.argv[4] if len(sys.argv) > 4 else None
secret = bytes.fromhex(open(secret_file).read().strip())
CHUNK = re.compile(r"^/v1/chunks/([0-9a-f]{32})(\?.*)?$")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def chunk_token(operation, chunk, pipeline=""):
    claims = "\n".join(["v1", operation, chunk, str(int(time.time()) + 3600), pipeline]).encode()
    return "v1." + b64url(claims) + "." + b64url(hmac.new(secret, claims, hashlib.sha256).digest())


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization", "connection")}
        digest = hashlib.sha256(body).hexdigest()
        date = str(int(time.time()))
        message = "\n".join(["TYDFS-HMAC-SHA256", date, self.command, self.path, digest]).encode()
        signature = hmac.new(secret, message, hashlib.sha256).hexdigest()
        headers["Authorization"] = f"TYDFS-HMAC-SHA256 Credential=cluster, Date={date}, Signature={signature}"
        headers["X-TYDFS-Content-SHA256"] = digest
        match = CHUNK.match(self.path)
        if datakeeper and match and "X-TYDFS-Token" not in self.headers:
            if self.command == "PUT":
                # The pipeline is this datakeeper alone: a fuzzed forward header naming other
                # hosts is refused (403), never followed.
                headers["X-TYDFS-Token"] = chunk_token("write", match.group(1), f"{datakeeper}={target}")
            else:
                headers["X-TYDFS-Token"] = chunk_token("read", match.group(1))
        chunks = next((v for k, v in self.headers.items() if k.lower() == "x-tydfs-chunks"), None)
        if datakeeper and self.path.split("?")[0] == "/v1/chunk-batch" and chunks is not None:
            # Each listed chunk with a well-formed id gets a genuine token for the batch's method.
            def with_token(item):
                parts = item.split(":")
                if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{32}", parts[0]):
                    return item
                token = chunk_token("write", parts[0], f"{datakeeper}={target}") if self.command == "PUT" else chunk_token("read", parts[0])
                return f"{parts[0]}:{parts[1]}:{token}"
            headers = {k: v for k, v in headers.items() if k.lower() != "x-tydfs-chunks"}
            headers["X-TYDFS-Chunks"] = ",".join(with_token(item) for item in chunks.split(","))
        connection = http.client.HTTPConnection(target, timeout=30)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except Exception as error:  # the server hung up or timed out: a failure the fuzzer must see
            self.send_response(599)
            self.send_header("Content-Length", "0")
            self.end_headers()
            sys.stderr.write(f"proxy: {self.command} {self.path}: {error}\n")
        finally:
            connection.close()

    def __getattr__(self, name):
        # Every method the fuzzer tries (GET … TRACE, QUERY, made-up ones) goes to the server.
        if name.startswith("do_"):
            return self.forward
        raise AttributeError(name)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", listen_port), Proxy).serve_forever()
