#!/usr/bin/python3
"""A real python3-grpcio peer for wire-compatibility tests (run with Debian's /usr/bin/python3).

  grpc_peer.py client PORT PKI_DIR CLIENT_NAME|none KIND PATH TIMEOUT_S HEX [HEX ...]
      KIND is unary or stream. Raw bytes in (hex, serialized by the C# test), one JSON line out:
      {"code": "OK", "response": "<hex>"} or {"code": "FAILED_PRECONDITION", "details": "..."}
  grpc_peer.py server PKI_DIR
      Serves test.v1.Echo over mTLS on 127.0.0.1:0, prints the bound port, stops when stdin closes.
      Unary: echo; Fail: FAILED_PRECONDITION with a non-ASCII message; Count (client stream):
      a PushResponse{applied_seq=count, entries_applied=total bytes}; Slow: sleeps 5 s then echoes.
"""
import json
import os
import sys
import time
from concurrent import futures

import grpc


def read(pki, name):
    with open(os.path.join(pki, name), "rb") as f:
        return f.read()


def client(port, pki, client_name, kind, path, timeout, hexes):
    root = read(pki, "tls-ca.crt")
    if client_name == "none":
        creds = grpc.ssl_channel_credentials(root_certificates=root)
    else:
        creds = grpc.ssl_channel_credentials(
            root_certificates=root,
            private_key=read(pki, client_name + ".key"),
            certificate_chain=read(pki, client_name + ".crt"))
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel("127.0.0.1:%s" % port, creds, options=options) as channel:
        requests = [bytes.fromhex(h) for h in hexes] or [b""]
        try:
            if kind == "unary":
                call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
                response = call(requests[0], timeout=timeout)
            else:
                call = channel.stream_unary(path, request_serializer=None, response_deserializer=None)
                response = call(iter(requests), timeout=timeout)
            out = {"code": "OK", "response": response.hex()}
        except grpc.RpcError as e:
            out = {"code": e.code().name, "details": e.details()}
    print(json.dumps(out), flush=True)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def server(pki):
    key = read(pki, "mirror-sync-server.key")
    crt = read(pki, "mirror-sync-server.crt")
    root = read(pki, "tls-ca.crt")

    def unary(request, context):
        return request

    def fail(request, context):
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "journal fork at seq 7: \u00fcber 100% wrong")

    def count(request_iterator, context):
        n = 0
        total = 0
        for m in request_iterator:
            n += 1
            total += len(m)
        # offlinepki.sync.v1.PushResponse: applied_seq (1) = n, entries_applied (3) = total
        return b"\x08" + varint(n) + b"\x18" + varint(total)

    def slow(request, context):
        time.sleep(5)
        return request

    handler = grpc.method_handlers_generic_handler("test.v1.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Count": grpc.stream_unary_rpc_method_handler(count),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
    })
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    srv.add_generic_rpc_handlers((handler,))
    creds = grpc.ssl_server_credentials([(key, crt)], root_certificates=root, require_client_auth=True)
    port = srv.add_secure_port("127.0.0.1:0", creds)
    srv.start()
    print(port, flush=True)
    sys.stdin.read()
    srv.stop(0)


def main():
    if sys.argv[1] == "client":
        port, pki, name, kind, path, timeout = sys.argv[2:8]
        client(port, pki, name, kind, path, float(timeout), sys.argv[8:])
    elif sys.argv[1] == "server":
        server(sys.argv[2])
    else:
        raise SystemExit("usage: grpc_peer.py client|server ...")


if __name__ == "__main__":
    main()
