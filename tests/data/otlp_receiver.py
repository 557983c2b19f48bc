"""An OTLP/HTTP trace receiver for the tests: decodes each export with the OpenTelemetry
project's own protobuf definitions (opentelemetry-proto) and prints one JSON line per span.

Usage: otlp_receiver.py [answer|stall|fail]. Prints the port it listens on first.
"""
import http.server
import json
import sys
import threading
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

MODE = sys.argv[1] if len(sys.argv) > 1 else "answer"
LOCK = threading.Lock()


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def attributes(items):
    return {kv.key: value(kv.value) for kv in items}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if MODE == "stall":
            time.sleep(3600)
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        lines = []
        for rs in request.resource_spans:
            resource = attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                for span in ss.spans:
                    lines.append(json.dumps({
                        "path": self.path,
                        "content_type": self.headers.get("Content-Type"),
                        "auth": self.headers.get("X-Collector-Token"),
                        "resource": resource,
                        "scope": ss.scope.name,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "start": span.start_time_unix_nano,
                        "end": span.end_time_unix_nano,
                        "attributes": attributes(span.attributes),
                        "events": [
                            {"name": e.name, "time": e.time_unix_nano,
                             "attributes": attributes(e.attributes)}
                            for e in span.events
                        ],
                        "status": {"code": span.status.code, "message": span.status.message},
                    }))
        with LOCK:
            for line in lines:
                print(line, flush=True)
        status = 500 if MODE == "fail" else 200
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
