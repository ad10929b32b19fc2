#!/usr/bin/python3
"""An HTTP/2 "backend" that never processes a request, for the proxy's retry tests.

usage: h2_refuser.py HOST MODE      MODE: refuse (RST_STREAM REFUSED_STREAM on every stream) or
                                          goaway (GOAWAY last_stream_id=0 on the first request)
Prints "listening PORT", then serves until killed. Uses python3-h2.
"""
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.errors
import h2.events


def serve(sock, mode):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    if mode == "refuse":
                        conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                    else:
                        conn.close_connection(h2.errors.ErrorCodes.NO_ERROR, last_stream_id=0)
            sock.sendall(conn.data_to_send())
    except (OSError, h2.exceptions.ProtocolError):
        return
    finally:
        sock.close()


def main():
    host, mode = sys.argv[1], sys.argv[2]
    listener = socket.socket()
    listener.bind((host, 0))
    listener.listen(16)
    print("listening %d" % listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=serve, args=(sock, mode), daemon=True).start()


if __name__ == "__main__":
    main()
