"""The independent SM2 judge the tests share: the `openssl` command (OpenSSL 3) makes SM2 keys and
certificates and signs with SM2 over SM3 with a given distinguishing identifier (`-sigopt distid:`)."""
from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree

from gateway.protocol import signing, sm2

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
DS = signing.DS


def openssl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([OPENSSL, *args], input=data, capture_output=True, timeout=30)


def openssl_pair(tmp_path: Path, name: str = "op") -> tuple[Path, Path]:
    """An SM2 key and self-signed SM2-with-SM3 certificate made by the openssl command, not by us."""
    key, cert = tmp_path / f"{name}.key.pem", tmp_path / f"{name}.cert.pem"
    assert openssl("genpkey", "-algorithm", "SM2", "-out", str(key)).returncode == 0
    done = openssl("req", "-new", "-x509", "-key", str(key), "-sm3", "-sigopt", "distid:1234567812345678",
                   "-subj", "/O=Demo Trading/CN=DEMO-sm2", "-days", "30", "-out", str(cert))
    assert done.returncode == 0, done.stderr
    return key, cert


def signed_by_openssl(doc: bytes, key: Path, cert: Path, tmp_path: Path, distid: str = "1234567812345678") -> bytes:
    """Enveloped-sign `doc` with the profile, the SignatureValue made by `openssl dgst -sm3 -sign`."""
    root = etree.fromstring(doc)
    digest = sm2.sm3(etree.tostring(root, method="c14n", exclusive=True))
    sig = etree.SubElement(root, f"{{{DS}}}Signature", nsmap={"ds": DS})
    info = etree.SubElement(sig, f"{{{DS}}}SignedInfo")
    etree.SubElement(info, f"{{{DS}}}CanonicalizationMethod", Algorithm=signing.EXC_C14N)
    etree.SubElement(info, f"{{{DS}}}SignatureMethod", Algorithm=signing.SM2_SM3)
    ref = etree.SubElement(info, f"{{{DS}}}Reference", URI="")
    transforms = etree.SubElement(ref, f"{{{DS}}}Transforms")
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=signing.ENVELOPED)
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=signing.EXC_C14N)
    etree.SubElement(ref, f"{{{DS}}}DigestMethod", Algorithm=signing.SM3)
    etree.SubElement(ref, f"{{{DS}}}DigestValue").text = base64.b64encode(digest).decode()
    data = tmp_path / "signed-info.bin"
    data.write_bytes(etree.tostring(info, method="c14n", exclusive=True))
    done = openssl("dgst", "-sm3", "-sign", str(key), "-sigopt", f"distid:{distid}", str(data))
    assert done.returncode == 0, done.stderr
    r, s = decode_dss_signature(done.stdout)
    etree.SubElement(sig, f"{{{DS}}}SignatureValue").text = base64.b64encode(
        r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
    x509data = etree.SubElement(etree.SubElement(sig, f"{{{DS}}}KeyInfo"), f"{{{DS}}}X509Data")
    pem = cert.read_bytes()
    etree.SubElement(x509data, f"{{{DS}}}X509Certificate").text = "".join(pem.decode().splitlines()[1:-1])
    return etree.tostring(root)
