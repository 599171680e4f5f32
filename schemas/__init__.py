"""The XSDs of protocol v1, shipped as package data (see README.md in this folder), and how any XSD is compiled."""
import threading
from importlib.resources import files

from lxml import etree

SCHEMA_DIR = files(__name__)

_COMPILING = threading.Lock()


def compile_schema(doc: etree._ElementTree | etree._Element) -> etree.XMLSchema:
    """Compile an XSD, one at a time in the process. libxml2 sets up its built-in schema types on first use
    without a lock: threads compiling together at a fresh start broke them, and every request after was
    refused as schema-invalid, or the process aborted ("double free"). Compiling is rare (each thread keeps
    what it compiled), so the lock costs nothing after the start."""
    with _COMPILING:
        return etree.XMLSchema(doc)
