"""Stand-in llama.cpp server (tests only): /v1/models and /v1/chat/completions on --port; the completion
numbered STANDIN_CRASH_AT (1: the warm-up) ends the process with signal STANDIN_SIGNAL (default SIGSEGV)."""

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--model_alias", default="local")
args, _ = parser.parse_known_args()
CRASH_AT = int(os.environ.get("STANDIN_CRASH_AT", "0"))
SIGNAL = getattr(signal, os.environ.get("STANDIN_SIGNAL", "SIGSEGV"))
completions = 0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):  # the launcher keeps our stderr as the server log
        pass

    def _json(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._json({"object": "list", "data": [{"id": args.model_alias, "object": "model", "owned_by": "me"}]})

    def do_POST(self):
        global completions
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        completions += 1
        if completions == CRASH_AT:
            print("ggml_backend_amx_mul_mat: stand-in fault", file=sys.stderr, flush=True)
            # to this thread, which then never answers: a signal sent to the process may be taken by another
            # thread while this one goes on and sends a reply (seen under load)
            signal.pthread_kill(threading.get_ident(), SIGNAL)
            time.sleep(60)
        if request.get("stream"):  # one token per server-sent event, as llama.cpp's server streams
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for word in ["un", "kn", "own"]:
                chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": word}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True
            return
        self._json(
            {
                "id": "x",
                "object": "chat.completion",
                "model": args.model_alias,
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "unknown"}}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )


ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
