#!/usr/bin/python3
"""Crafts malformed and hostile gRPC/HTTP/2 traffic against podlb's ADS server (used by
ads_hostile_input_test.cc).

usage: ads_attacks.py PORT SCENARIO
Prints one line "RESULT key=value ..." describing what the server did; the C++ test asserts on it.
Raw frames (hyperframe + hpack from python3-h2, through the proxy's attack helpers) so that no
client-side check gets in the way.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proxy"))
import h2_attacks  # noqa: E402
from h2_attacks import Conn, grpc_message  # noqa: E402
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame, RstStreamFrame  # noqa: E402

ADS_PATH = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
CDS = b"type.googleapis.com/envoy.config.cluster.v3.Cluster"


def cds_request():
    """DiscoveryRequest{type_url: CDS} (field 4), a wildcard subscription."""
    return b"\x22" + bytes([len(CDS)]) + CDS


def call(conn, stream_id, path=ADS_PATH, content_type="application/grpc", body=None,
         end_stream=False):
    """Opens a call and sends `body` (raw bytes) on it; returns what ended it or what came first:
    "status=N" (grpc-status), "http=N" (a non-200 :status), "data" (a response message),
    "rst=N", or "closed"."""
    h = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "xds"),
         ("content-type", content_type), ("te", "trailers")]
    flags = {"END_HEADERS"} | ({"END_STREAM"} if end_stream and body is None else set())
    frames = [HeadersFrame(stream_id, data=conn.enc.encode(h), flags=flags)]
    if body is not None:
        frames.append(DataFrame(stream_id, data=body, flags={"END_STREAM"} if end_stream else set()))
    conn.send(*frames)
    while True:
        f = conn.read_frame()
        if f is None:
            return "closed"
        if f.stream_id != stream_id:
            continue
        if isinstance(f, RstStreamFrame):
            return "rst=%d" % f.error_code
        if isinstance(f, DataFrame) and f.data:
            return "data"
        if isinstance(f, HeadersFrame):
            fields = dict(f.decoded)
            if fields.get(":status", "200") != "200":
                return "http=%s" % fields[":status"]
            if "grpc-status" in fields:
                return "status=%s" % fields["grpc-status"]


def main():
    port, scenario = int(sys.argv[1]), sys.argv[2]
    if scenario == "valid":
        c = Conn(port)
        print("RESULT first=%s" % call(c, 1, body=grpc_message(cds_request())))
    elif scenario == "compressed":
        c = Conn(port)
        body = b"\x01" + grpc_message(cds_request())[1:]
        print("RESULT first=%s" % call(c, 1, body=body))
    elif scenario == "oversize":
        # The prefix announces 64 MiB; the server must refuse without waiting for them.
        c = Conn(port)
        print("RESULT first=%s" % call(c, 1, body=b"\x00" + (64 << 20).to_bytes(4, "big")))
    elif scenario == "not_protobuf":
        c = Conn(port)
        print("RESULT first=%s" % call(c, 1, body=grpc_message(b"\xff\xff\xff\xff\x0f")))
    elif scenario == "content_type":
        c = Conn(port)
        print("RESULT first=%s" % call(c, 1, content_type="text/plain", body=b"hello"))
    elif scenario == "unknown_method":
        c = Conn(port)
        print("RESULT first=%s" % call(c, 1, path="/grpc.health.v1.Health/Check",
                                       body=grpc_message(b""), end_stream=True))
    elif scenario == "half_close":
        # A client that sends its request and half-closes: the response, then OK.
        c = Conn(port)
        first = call(c, 1, body=grpc_message(cds_request()), end_stream=True)
        end = c.until(lambda f: isinstance(f, (HeadersFrame, RstStreamFrame)) and f.stream_id == 1)
        status = dict(end.decoded).get("grpc-status") if isinstance(end, HeadersFrame) else end
        print("RESULT first=%s end=%s" % (first, status))
    elif scenario in ("rapid_reset", "ping_flood", "settings_flood", "no_preface"):
        # The proxy's floods and its silent connection, on the ADS method.
        h2_attacks.PATH = ADS_PATH
        h2_attacks.main()
    elif scenario == "http1":
        c = Conn(port, preface=False)
        c.sock.settimeout(10)
        c.sock.sendall(b"GET / HTTP/1.1\r\nHost: xds\r\n\r\n")
        f = c.until(lambda f: isinstance(f, GoAwayFrame))
        print("RESULT goaway=%s" % (f.error_code if f is not None else "closed"))
    else:
        sys.exit("unknown scenario " + scenario)


if __name__ == "__main__":
    main()
