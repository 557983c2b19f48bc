"""A Lambda function behind a minimal Invoke API: a Starlette app run by Mangum, the ASGI adapter
that real API Gateway functions use. The gateway's API Gateway event goes to Mangum exactly as
Lambda would hand it over; Mangum's answer goes back as the function's output.

    python3 mangum_lambda.py PORT_FILE     # listens on 127.0.0.1, writes its port to PORT_FILE

The app answers what it saw: method, path, path parameters (the event's), query (single and
repeated), headers, cookies, and the body (as text and as bytes).
"""

import asyncio
import hashlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mangum import Mangum
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def seen(request):
    body = await request.body()
    event = request.scope.get("aws.event", {})
    answer = {
        "method": request.method,
        "path": request.url.path,
        "route_param": request.path_params.get("item_id"),
        "event_path_parameters": event.get("pathParameters"),
        "query": {k: request.query_params.getlist(k) for k in request.query_params.keys()},
        "headers": {k: v for k, v in request.headers.items() if k.startswith("x-")},
        "cookies": dict(request.cookies),
        "body_text": body.decode("utf-8", "replace"),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_len": len(body),
        "event_version": event.get("version"),
    }
    response = JSONResponse(answer, status_code=201 if request.method == "POST" else 200)
    response.set_cookie("served", "yes")
    response.set_cookie("flavour", "mangum")
    return response


async def binary(request):
    return Response(bytes(range(256)), media_type="application/octet-stream")


app = Starlette(routes=[
    Route("/items/{item_id}", seen, methods=["GET", "POST", "PUT"]),
    Route("/binary", binary),
])
handler = Mangum(app, lifespan="off")


class Context:
    function_name = "mangum-app"
    aws_request_id = "invoke-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:mangum-app"
    memory_limit_in_mb = 128

    def get_remaining_time_in_millis(self):
        return 30000


class Invoke(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        # Mangum runs the app on the thread's event loop; a server thread has none yet.
        try:
            asyncio.get_event_loop()
        except RuntimeError:
            asyncio.set_event_loop(asyncio.new_event_loop())
        length = int(self.headers.get("content-length", "0"))
        event = json.loads(self.rfile.read(length))
        try:
            output = json.dumps(handler(event, Context())).encode()
            status = 200
            extra = []
        except Exception as e:  # the function failed: Lambda's Unhandled error
            output = json.dumps({"errorMessage": str(e), "errorType": type(e).__name__}).encode()
            status = 200
            extra = [("X-Amz-Function-Error", "Unhandled")]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-RequestId", "mangum-invoke")
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(output)))
        self.end_headers()
        self.wfile.write(output)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Invoke)
    with open(sys.argv[1], "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()
