"""Drives a running Carrel SIP2 listener with the PyPI `sip2` client (module
`Sip2`, version 1.1), which shares no code with Carrel: login, patron
information, checkout, checkin. Exits non-zero on any surprise.

Usage: python sip2_pypi_client.py HOST PORT LOGIN PASSWORD CARD PIN BARCODE
(the test `sip2::pypi_client_interop` runs it; see README "SIP2 operations").
"""
import json
import sys

from Sip2.sip2 import Sip2

host, port, login, password, card, pin, barcode = sys.argv[1:8]

sip = Sip2()
sip.hostName = host
sip.hostPort = int(port)
sip.tlsEnable = False
sip.socketTimeout = 20
sip.hostEncoding = "utf-8"
sip.institutionId = "main-lib"
sip.scLocation = "MAIN"
sip.language = "001"
sip.loglevel = "CRITICAL"
sip.connect()


def call(request, parse):
    response = sip.get_response(request)
    return response, parse(response)


report = {}
_, r = call(sip.sip_login_request(login, password), sip.sip_login_response)
assert r["fixed"]["Ok"] == "1", r
report["login"] = r["fixed"]["Ok"]

_, r = call(sip.sip_sc_status_request(), sip.sip_sc_status_response)
assert r["fixed"]["OnlineStatus"] == "Y", r

sip.patron = card
sip.patronpwd = pin
raw, r = call(sip.sip_patron_information_request("charged"), sip.sip_patron_information_response)
assert r["variable"]["BL"] == ["Y"] and r["variable"]["CQ"] == ["Y"], raw
report["patron_name"] = r["variable"]["AE"][0]

raw, r = call(sip.sip_checkout_request(barcode), sip.sip_checkout_response)
assert r["fixed"]["Ok"] == "1", raw
report["due"] = r["variable"]["AH"][0]
report["title"] = r["variable"]["AJ"][0]

raw, r = call(sip.sip_patron_information_request("charged"), sip.sip_patron_information_response)
assert r["variable"]["AU"] == [barcode], raw

raw, r = call(sip.sip_checkin_request(barcode), sip.sip_checkin_response)
assert r["fixed"]["Ok"] == "1", raw
report["checkin"] = r["fixed"]["Ok"]

sip.patronpwd = "0000"
raw, r = call(sip.sip_checkout_request(barcode), sip.sip_checkout_response)
assert r["fixed"]["Ok"] == "0", raw
report["wrong_pin_refused"] = True

sip.disconnect()
print("REPORT " + json.dumps(report), flush=True)
