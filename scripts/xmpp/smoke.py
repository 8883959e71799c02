#!/usr/bin/env python3
"""Smoke test for a private test server started by prosody-up or ejabberd-up, with only the
Python standard library (plain sockets, no TLS):

1. a component connects to the component port and authenticates (XEP-0114 handshake);
2. alice logs in on the c2s port (SASL PLAIN) and binds a resource;
3. with --delegation: the component answers the server's disco#info queries, receives the
   XEP-0355 delegation advertisement, and alice's <iq type='get' to='localhost'><query
   xmlns='urn:example:delegated'/></iq> is forwarded to it and answered.

Exit status 0 only if every step works. Example:
    scripts/xmpp/smoke.py --c2s-port 5222 --component-port 5252 --delegation
"""
import argparse
import base64
import hashlib
import socket
import sys
import xml.etree.ElementTree as ET

STREAM = "http://etherx.jabber.org/streams"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
FORWARD = "urn:xmpp:forward:0"
DELEGATED = "urn:example:delegated"


class Stream:
    """One XML stream over a TCP socket: sends text, returns top-level elements."""

    def __init__(self, port, ns, to, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.ns, self.to = ns, to
        self.open()

    def open(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth, self.header, self.pending = 0, None, []
        self.send(
            f"<?xml version='1.0'?><stream:stream xmlns='{self.ns}' "
            f"xmlns:stream='{STREAM}' to='{self.to}' version='1.0'>"
        )
        while self.header is None:
            self._read()
        return self.header

    def send(self, text):
        self.sock.sendall(text.encode())

    def _read(self):
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("connection closed by the server")
        self.parser.feed(data)
        for event, el in self.parser.read_events():
            if event == "start":
                self.depth += 1
                if self.depth == 1:
                    self.header = el
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.pending.append(el)

    def next(self):
        while not self.pending:
            self._read()
        el = self.pending.pop(0)
        if el.tag == f"{{{STREAM}}}error":
            raise RuntimeError("stream error: " + ET.tostring(el, encoding="unicode"))
        return el

    def close(self):
        try:
            self.send("</stream:stream>")
            self.sock.close()
        except OSError:
            pass


def component(a):
    s = Stream(a.component_port, "jabber:component:accept", a.domain, a.timeout)
    sid = s.header.get("id")
    print(f"component: stream id {sid}")
    s.send(f"<handshake>{hashlib.sha1((sid + a.secret).encode()).hexdigest()}</handshake>")
    el = s.next()
    if el.tag != "{jabber:component:accept}handshake":
        raise RuntimeError("handshake refused: " + ET.tostring(el, encoding="unicode"))
    print(f"component: handshake accepted on 127.0.0.1:{a.component_port} as {a.domain}")
    return s


def client(a):
    s = Stream(a.c2s_port, "jabber:client", a.host, a.timeout)
    features = s.next()
    mechs = [m.text for m in features.iter(f"{{{SASL}}}mechanism")]
    if "PLAIN" not in mechs:
        raise RuntimeError(f"PLAIN not offered: {mechs}")
    token = base64.b64encode(f"\0{a.user}\0{a.password}".encode()).decode()
    s.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{token}</auth>")
    el = s.next()
    if el.tag != f"{{{SASL}}}success":
        raise RuntimeError("authentication failed: " + ET.tostring(el, encoding="unicode"))
    s.open()
    s.next()  # features after authentication
    s.send(f"<iq type='set' id='bind1'><bind xmlns='{BIND}'><resource>smoke</resource></bind></iq>")
    el = s.next()
    jid = el.find(f"{{{BIND}}}bind/{{{BIND}}}jid")
    if el.get("type") != "result" or jid is None:
        raise RuntimeError("bind failed: " + ET.tostring(el, encoding="unicode"))
    print(f"client: logged in on 127.0.0.1:{a.c2s_port} as {jid.text}")
    return s, jid.text


def delegation(a, comp, cli, full_jid):
    ns_c = "jabber:component:accept"
    advertised, names = None, set()
    # The server queries the component's disco#info for the delegation nodes, then advertises
    # the delegations in <message>s (Prosody: one for all; ejabberd: one per namespace and
    # answer, repeated, and only once the component has answered the queries).
    while not {DELEGATED, "jabber:iq:version"} <= names:
        el = comp.next()
        query = el.find(f"{{{DISCO_INFO}}}query")
        if el.tag == f"{{{ns_c}}}iq" and el.get("type") == "get" and query is not None:
            node = query.get("node", "")
            comp.send(
                f"<iq type='result' id='{el.get('id')}' to='{el.get('from')}' from='{a.domain}'>"
                f"<query xmlns='{DISCO_INFO}' node='{node}'><identity category='component' type='generic'/>"
                f"<feature var='{DELEGATED}'/><feature var='jabber:iq:version'/></query></iq>"
            )
        elif el.tag == f"{{{ns_c}}}message":
            for child in el:
                if child.tag.endswith("}delegation"):
                    advertised = child.tag[1:].split("}")[0]
                    new = {d.get("namespace") for d in child} - names
                    names |= new
                    if new:
                        print(f"component: delegation advertised ({advertised}): {sorted(new)}")
    cli.send(f"<iq type='get' id='q1' to='{a.host}'><query xmlns='{DELEGATED}'/></iq>")
    while True:
        el = comp.next()
        fwd = el.find(f"{{{advertised}}}delegation/{{{FORWARD}}}forwarded")
        if el.tag == f"{{{ns_c}}}iq" and el.get("type") == "set" and fwd is not None:
            break
    inner = fwd.find("{jabber:client}iq")
    print(f"component: got delegated iq from {inner.get('from')}")
    comp.send(
        f"<iq type='result' id='{el.get('id')}' to='{el.get('from')}' from='{a.domain}'>"
        f"<delegation xmlns='{advertised}'><forwarded xmlns='{FORWARD}'>"
        f"<iq xmlns='jabber:client' type='result' id='{inner.get('id')}' to='{inner.get('from')}' "
        f"from='{a.host}'><query xmlns='{DELEGATED}' answer='42'/></iq></forwarded></delegation></iq>"
    )
    while True:
        el = cli.next()
        if el.tag == "{jabber:client}iq" and el.get("id") == "q1":
            break
    q = el.find(f"{{{DELEGATED}}}query")
    if el.get("type") != "result" or q is None or q.get("answer") != "42":
        raise RuntimeError("unexpected reply: " + ET.tostring(el, encoding="unicode"))
    print(f"client: delegated query answered by the component (from {el.get('from')})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--c2s-port", type=int, default=5222)
    p.add_argument("--component-port", type=int, default=5252)
    p.add_argument("--domain", default="component.localhost")
    p.add_argument("--secret", default="secret")
    p.add_argument("--host", default="localhost")
    p.add_argument("--user", default="alice")
    p.add_argument("--password", default="alice-pass")
    p.add_argument("--delegation", action="store_true", help="also check XEP-0355 delegation")
    p.add_argument("--timeout", type=float, default=10)
    a = p.parse_args()
    try:
        comp = component(a)
        cli, jid = client(a)
        if a.delegation:
            delegation(a, comp, cli, jid)
        cli.close()
        comp.close()
    except (OSError, RuntimeError) as e:
        print(f"smoke.py: FAILED: {e}", file=sys.stderr)
        return 1
    print("smoke.py: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
