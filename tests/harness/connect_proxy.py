"""A small HTTP CONNECT proxy for the lab: it tunnels only to addresses of the lab's /24 and logs
each CONNECT (target, whether credentials came, never what they were) as one line.

    python3 tests/harness/connect_proxy.py BIND_ADDRESS PORT LAB_NET LOGFILE

Run inside a lab member's network namespace (nsenter --net), bound on that member's lab address:
it listens and connects only there. Anything but CONNECT, or a target outside LAB_NET.0/24, gets
403 and a REFUSED line. Started and ended by the test, by its PID.
"""

from __future__ import annotations

import ipaddress
import socket
import socketserver
import sys
import threading


class _Tunnel(socketserver.StreamRequestHandler):
    lab: ipaddress.IPv4Network
    log_path: str
    lock = threading.Lock()

    def _log(self, line: str) -> None:
        with self.lock, open(self.log_path, "a") as log:
            log.write(line + "\n")

    def handle(self) -> None:
        head = self.rfile.readline(8192).decode("latin-1").split()
        headers = {}
        while (line := self.rfile.readline(8192).decode("latin-1").strip()) != "":
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        method, target = (head + ["", ""])[:2]
        host, _, port = target.rpartition(":")
        try:
            allowed = method == "CONNECT" and ipaddress.ip_address(host) in self.lab and port.isdigit()
        except ValueError:
            allowed = False
        if not allowed:
            self._log(f"REFUSED {method} {target}")
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        auth = "yes" if headers.get("proxy-authorization", "").lower().startswith("basic ") else "no"
        self._log(f"CONNECT {host}:{port} auth={auth}")
        upstream = socket.create_connection((host, int(port)), timeout=30)
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        threads = [
            threading.Thread(target=_pipe, args=(self.connection, upstream), daemon=True),
            threading.Thread(target=_pipe, args=(upstream, self.connection), daemon=True),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        upstream.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> None:
    bind, port, net, log_path = sys.argv[1:5]
    lab = ipaddress.ip_network(f"{net}.0/24")
    if ipaddress.ip_address(bind) not in lab:
        sys.exit(f"{bind} is not a lab address ({lab})")
    handler = type("Handler", (_Tunnel,), {"lab": lab, "log_path": log_path})
    with _Server((bind, int(port)), handler) as server:
        print("ready", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
