"""Just enough SMTP to take messages: a sink on 127.0.0.1 for the alert tests (also imported by
the scripts they run in other processes)."""

import email
import socketserver
import threading


class _Session(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"220 sink\r\n")
        data = None
        for raw in self.rfile:
            line = raw.decode(errors="replace").rstrip("\r\n")
            if data is not None:
                if line == ".":
                    self.server.mails.append(email.message_from_string("\n".join(data)))
                    data = None
                    self.wfile.write(b"250 ok\r\n")
                else:
                    data.append(line[1:] if line.startswith("..") else line)
            elif line[:4].upper() == "DATA":
                data = []
                self.wfile.write(b"354 go on\r\n")
            elif line[:4].upper() == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def start_sink() -> tuple[dict, list]:
    """A running sink: (the `audience_alerts` connection that sends to it, the messages it took)."""
    sink = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Session)
    sink.daemon_threads = True
    sink.mails = []
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    connection = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": sink.server_address[1],
        "extra": {
            "to": "oncall@example.org",
            "from_email": "airflow@example.org",
            "disable_tls": True,
            "disable_ssl": True,
        },
    }
    return connection, sink.mails


def summary(message) -> dict:
    body = "".join(p.get_payload(decode=True).decode() for p in message.walk() if not p.is_multipart())
    return {"to": message["To"], "subject": message["Subject"], "body": body}
