#!/usr/bin/python3
"""Crafts hostile HTTP/2 traffic against the podlb proxy (used by hostile_input_test.cc).

usage: h2_attacks.py PORT SCENARIO
Prints one line "RESULT key=value ..." describing what the proxy did; the C++ test asserts on it.
Raw frames (hyperframe + hpack, both from python3-h2) so client-side checks cannot get in the way.
"""
import socket
import sys
import time

from hpack import Decoder, Encoder
from hyperframe.frame import (DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame,
                              RstStreamFrame, SettingsFrame, WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PATH = "/grpc.testing.TestService/UnaryCall"


class Conn:
    def __init__(self, port, preface=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.enc = Encoder()
        self.dec = Decoder()
        self.buf = b""
        self.preface = preface
        if preface:
            self.sock.sendall(PREFACE + SettingsFrame(0).serialize())

    def send(self, *frames):
        try:
            self.sock.sendall(b"".join(f.serialize() for f in frames))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the proxy hung up; what it said before is still to be read

    def headers(self, stream_id, extra=(), end_stream=False, timeout=None):
        h = [(":method", "POST"), (":scheme", "http"), (":path", PATH),
             (":authority", "greeter.default:50051"), ("content-type", "application/grpc"),
             ("te", "trailers")]
        if timeout:
            h.append(("grpc-timeout", timeout))
        h.extend(extra)
        flags = {"END_HEADERS"} | ({"END_STREAM"} if end_stream else set())
        return HeadersFrame(stream_id, data=self.enc.encode(h), flags=flags)

    def read_frame(self):
        """The next frame, or None on EOF / reset."""
        while True:
            if len(self.buf) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) >= 9 + length:
                    frame.parse_body(memoryview(self.buf[9:9 + length]))
                    self.buf = self.buf[9 + length:]
                    if isinstance(frame, HeadersFrame):
                        frame.decoded = self.dec.decode(frame.data)
                    if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags and self.preface:
                        self.send(SettingsFrame(0, flags={"ACK"}))
                    return frame
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                return None
            if not data:
                return None
            self.buf += data

    def until(self, predicate, limit=100000):
        for _ in range(limit):
            f = self.read_frame()
            if f is None or predicate(f):
                return f
        return None


def grpc_message(body=b""):
    return b"\x00" + len(body).to_bytes(4, "big") + body


def unary(conn, stream_id, body=b"", timeout=None):
    """Sends one unary call; returns the grpc-status it ended with (str) or None."""
    conn.send(conn.headers(stream_id, timeout=timeout),
              DataFrame(stream_id, data=grpc_message(body), flags={"END_STREAM"}))
    status = None
    while True:
        f = conn.read_frame()
        if f is None:
            return status
        if isinstance(f, HeadersFrame) and f.stream_id == stream_id:
            for k, v in f.decoded:
                if k == "grpc-status":
                    status = v
            if "END_STREAM" in f.flags:
                return status
        if isinstance(f, RstStreamFrame) and f.stream_id == stream_id:
            return "rst:%d" % f.error_code
        if isinstance(f, DataFrame) and f.stream_id == stream_id:
            conn.send(WindowUpdateFrame(0, window_increment=max(1, len(f.data))))
            if "END_STREAM" in f.flags:
                return status


def goaway_code(conn):
    f = conn.until(lambda f: isinstance(f, GoAwayFrame))
    return f.error_code if f is not None else "none"


def main():
    port, scenario = int(sys.argv[1]), sys.argv[2]
    if scenario == "rapid_reset":
        c = Conn(port)
        sid = 1
        try:
            for _ in range(20):
                batch = []
                for _ in range(100):
                    batch += [c.headers(sid), RstStreamFrame(sid, error_code=8)]
                    sid += 2
                c.send(*batch)
        except (BrokenPipeError, ConnectionResetError):
            pass
        print("RESULT goaway=%s streams=%d" % (goaway_code(c), sid // 2))
    elif scenario in ("settings_flood", "ping_flood"):
        c = Conn(port)
        sent = 0
        try:
            for _ in range(50):
                if scenario == "settings_flood":
                    c.send(*[SettingsFrame(0, settings={4: 65535}) for _ in range(200)])
                else:
                    c.send(*[PingFrame(0, opaque_data=b"12345678") for _ in range(200)])
                sent += 200
        except (BrokenPipeError, ConnectionResetError):
            pass
        print("RESULT goaway=%s sent=%d" % (goaway_code(c), sent))
    elif scenario == "big_headers":
        c = Conn(port)
        c.send(c.headers(1, extra=[("x-big", "a" * 20000)], end_stream=True))
        f = c.until(lambda f: f.stream_id == 1 and isinstance(f, (RstStreamFrame, HeadersFrame)))
        first = "rst:%d" % f.error_code if isinstance(f, RstStreamFrame) else type(f).__name__
        print("RESULT big=%s next=%s" % (first, unary(c, 3)))
    elif scenario == "too_many_streams":
        # nghttp2 answers a peer that ignores the SETTINGS it acknowledged with a connection
        # error (RFC 9113 5.1.2 allows that or REFUSED_STREAM): the first 10 streams count.
        c = Conn(port)
        c.until(lambda f: isinstance(f, SettingsFrame) and "ACK" in f.flags)
        c.send(*[c.headers(1 + 2 * i) for i in range(20)])  # open, no END_STREAM
        refused, goaway = 0, None
        while True:
            f = c.read_frame()
            if f is None:
                break
            if isinstance(f, GoAwayFrame):
                goaway = f
                break
            if isinstance(f, RstStreamFrame):
                refused += 1
        if goaway is not None:
            print("RESULT goaway=%d last=%d" % (goaway.error_code, goaway.last_stream_id))
        else:
            print("RESULT refused=%d" % refused)
    elif scenario == "no_preface":
        c = Conn(port, preface=False)
        c.sock.settimeout(10)
        start = time.time()
        c.until(lambda f: False)
        print("RESULT closed_after=%.2f" % (time.time() - start))
    elif scenario == "idle":
        c = Conn(port)
        c.sock.settimeout(10)
        start = time.time()
        code = goaway_code(c)
        print("RESULT goaway=%s after=%.2f" % (code, time.time() - start))
    elif scenario == "grpc_timeout":
        c = Conn(port)
        # SimpleRequest{fill_username: true}: the test backend then waits until cancelled.
        print("RESULT status=%s" % unary(c, 1, body=b"\x20\x01", timeout="200m"))
    elif scenario == "unary":
        c = Conn(port)
        print("RESULT status=%s" % unary(c, 1))
    else:
        sys.exit("unknown scenario " + scenario)


if __name__ == "__main__":
    main()
