"""The ERP team's commands: `send` a signed request by hand, and list the `adapters` for their files."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from lxml import etree

from gateway.cli.common import fail


def send(file: Annotated[Path, typer.Argument(help="a Request XML; empty MessageId/Created are filled in")],
         operator: Annotated[str, typer.Option(help="the operator whose key signs")],
         key: Annotated[Path, typer.Option(help="the operator's private key (PEM)")],
         cert: Annotated[Path | None, typer.Option(help="default: KEY with .cert.pem")] = None,
         client: Annotated[str | None, typer.Option(help="default: Header/Client of FILE")] = None,
         url: Annotated[str, typer.Option(envvar="DIRECTLINK_URL", help="the gateway's base URL")]
         = "http://127.0.0.1:8080",
         gateway_cert: Annotated[Path | None, typer.Option(help="pinned gateway certificate")] = None,
         tls_ca: Annotated[Path | None, typer.Option(help="https: CA of the gateway's TLS certificate")] = None,
         tls_cert: Annotated[Path | None, typer.Option(help="mutual TLS: the client certificate")] = None,
         tls_key: Annotated[Path | None, typer.Option(help="mutual TLS: its key, if not in --tls-cert")] = None,
         dry_run: Annotated[bool, typer.Option("--dry-run", help="a PaymentOrder or DocumentSubmit is decided "
                                               "as it would be, and nothing is made (dryRun=\"true\")")] = False,
         ) -> None:
    """Sign FILE, post it, verify the answer's signature and print the answer. --gateway-cert may be a
    bundle of several gateway certificates (a key rollover): the answer is taken from whichever signed it."""
    from gateway.protocol import client as dl
    from gateway.protocol.xmlsafe import q, text
    cert = cert or Path(str(key).replace(".key.pem", ".cert.pem"))
    if not url.startswith(("http://", "https://")):
        fail(f"--url {url}: give the gateway's URL with http:// or https://, e.g. http://127.0.0.1:8080")
    try:
        root = etree.fromstring(file.read_bytes(), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as err:
        fail(f"{file} is not XML ({err}): give a Request document")
    if dry_run:
        operation = next((el for el in root if isinstance(el.tag, str) and el.tag != q("Header")), None)
        if operation is None or operation.tag not in (q("PaymentOrder"), q("DocumentSubmit")):
            fail(f"--dry-run: {file} holds no PaymentOrder or DocumentSubmit (only those have a dry run)")
        operation.set("dryRun", "true")
    client = client or text(root.find(f"{q('Header')}/{q('Client')}"))
    if not client:
        fail("no client: give --client or fill Header/Client in the file")
    try:
        http = dl.http_client(tls_ca=tls_ca, tls_certificate=tls_cert, tls_key=tls_key)
    except (OSError, ValueError) as err:   # ssl.SSLError is an OSError
        fail(f"TLS: {err}")
    if gateway_cert is None and Path("certs/gateway.cert.pem").exists():
        gateway_cert = Path("certs/gateway.cert.pem")
    if gateway_cert is not None:
        pinned = gateway_cert.read_bytes()
    else:
        typer.echo("warning: no --gateway-cert; trusting the certificate the gateway serves", err=True)
        pinned = http.get(f"{url.rstrip('/')}/v1/certificate").content
    key_pem, cert_pem = key.read_bytes(), cert.read_bytes()
    if b"PRIVATE KEY-----" not in key_pem:
        fail(f"--key {key} holds no private key: give the operator's .key.pem, not its certificate")
    try:
        c = dl.Client(url, client, operator, key_pem, cert_pem, pinned, http=http)
    except ValueError as err:   # unreadable PEM, or a key that is not the certificate's
        fail(f"cannot sign with --key {key} and --cert {cert}: {err}")
    answer = c.post(c.sign_document(root))
    pretty = etree.tostring(etree.fromstring(answer.raw), pretty_print=True, encoding="unicode")
    typer.echo(pretty)
    typer.echo(f"HTTP {answer.status} {answer.code}: {answer.detail} (signature verified)", err=True)
    raise typer.Exit(0 if answer.code == "OK" else 1)
