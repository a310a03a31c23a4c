"""A slow local web site: GET /<page>?delay=S answers after S seconds.

Prints `REPORT {"port": N}` once it listens on 127.0.0.1:N (port 0 = any
free port); serves until killed.

    python slow_server.py --port 8000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class SlowPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urlparse(self.path)
        delay = float(parse_qs(url.query).get("delay", ["0"])[0])
        time.sleep(delay)
        body = f"<html><body>page {url.path} after {delay} s</body></html>\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        print("served " + fmt % args, flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0)
    port = p.parse_args().port
    server = ThreadingHTTPServer(("127.0.0.1", port), SlowPage)
    print("REPORT " + json.dumps({"port": server.server_address[1]}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
