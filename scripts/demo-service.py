#!/usr/bin/env python3
"""The demo's small web service: GET /health answers 200 "ok", GET / a tiny shop page. Started by scripts/demo
inside its namespace; quiet (no access log). Usage: demo-service.py ADDRESS PORT"""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            body = b"ok\n"
        elif self.path == "/":
            body = b"<!doctype html><title>demo shop</title><h1>demo shop</h1><p>everything in stock</p>\n"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler)
    server.daemon_threads = True
    server.serve_forever()
