#!/usr/bin/env python3
"""Dump MARC records with pymarc in the text form tests/common compares against.

Run with pymarc installed (a venv under /var/tmp is enough):
    /var/tmp/pymarc-venv/bin/python tools/pymarc_dump.py tests/fixtures/test.dat > tests/fixtures/test.dat.pymarc.txt

One block a record: `=LDR  <leader>` (leader/09 shown as `a`, since records are
held as UTF-8 once read), then `=TAG  value` for control fields and
`=TAG  12$avalue$bvalue` for data fields; values NFC-normalised. A record
pymarc could not read is `=ERROR`. Blocks are separated by an empty line.
"""

import sys
import unicodedata

import pymarc


def nfc(s):
    return unicodedata.normalize("NFC", s)


def dump(record):
    leader = str(record.leader)
    # pymarc composes nothing; carrel-marc gives NFC for MARC-8 and keeps UTF-8 as stored.
    norm = nfc if leader[9] != "a" else (lambda s: s)
    lines = ["=LDR  " + leader[:9] + "a" + leader[10:]]
    for f in record.fields:
        if f.is_control_field():
            lines.append(f"={f.tag}  {norm(f.data)}")
        else:
            ind = "".join(f.indicators)
            subs = "".join(f"${s.code}{norm(s.value)}" for s in f.subfields)
            lines.append(f"={f.tag}  {ind}{subs}")
    return "\n".join(lines)


def main():
    path = sys.argv[1]
    if path.endswith(".xml"):
        records = pymarc.parse_xml_to_array(path)
    else:
        records = list(pymarc.MARCReader(open(path, "rb"), to_unicode=True, permissive=True))
    out = []
    for r in records:
        out.append("=ERROR" if r is None else dump(r))
    sys.stdout.write("\n\n".join(out) + "\n")


if __name__ == "__main__":
    main()
