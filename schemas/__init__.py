"""The XSDs of protocol v1, shipped as package data (see README.md in this folder)."""
from importlib.resources import files

SCHEMA_DIR = files(__name__)
