"""The attack suite: the test catalogue of security.md (section 8), one module per catalogue section.

tests/gateway/test_bad_input.py covers the basic code of each rule; these modules cover the attack shapes around them,
each written to catch a regression of one rule.

- test_signature_wrapping.py    A. SIG-01..05, 07, 08, 13: the eight XML signature wrapping variants
                                adapted to our envelope, evil roots, duplicate Ids, signature exclusion and
                                shape games
- test_signature_algorithms.py  A. SIG-11, 12, 16: algorithm downgrade, HMAC confusion, transforms (and the
                                control proving that the hand-made signatures are real)
- test_signature_keys.py        A. SIG-09, 10, 16: cloned certificates, attacker keys in KeyInfo,
                                a RetrievalMethod
- test_signed_values.py         A. SIG-06: comments, CDATA and character references inside signed values
- test_identity.py              A. SIG-05, 17, 18, F. AUT-01/02, C. RPL-06: another client's operator, case
                                folding, responses posted back, the signed Header changed after signing
- test_xml_parsing.py           B. XML-01..11: entities, DTDs, XInclude, PIs, depth, width, encodings, schema
                                differentials; and the regressions reduced from tests/scenarios/test_fuzz.py

attack_kit.py holds what they share (posting, the checks every attack gets, request builders, the hand-made
signature), conftest.py their fixtures (`listener`, `beta`). The folder is a package so that its conftest.py
is imported as security.conftest: a second top-level module named conftest would replace tests/conftest.py
in sys.modules and break every `from conftest import ...` collected after it.
"""
